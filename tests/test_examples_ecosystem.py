"""The ecosystem examples run, with tiny flags, in this process.

Each example's own absl flags are defined on a fresh `FlagValues` and parsed
from a command line, then its `run_with_flags` runs. The multi-worker run
(two local worker processes with `TF_CONFIG`) is `large`.
"""

import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys

import kfactor
from kfactor.data.folders import load_image_folder

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import flags

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_example(name):
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_example(name, **flag_values):
    module = load_example(name)
    values = flags.FlagValues()
    module.define_flags(values)
    values(
        [name, "--verbose=0", *[f"--{k}={v}" for k, v in flag_values.items()]]
    )
    return module.run_with_flags(values)


def write_image_folder(directory, per_class=8, size=16):
    """3 classes of tiny PNGs: the bright color channel is the class."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("red", "green", "blue")):
        folder = directory / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            image = rng.uniform(0, 80, (size, size, 3))
            image[..., label] += 170
            keras.utils.save_img(folder / f"{index}.png", image, scale=False)
    return directory


def test_tune_factorization(tmp_path, eager):
    summary = run_example(
        "tune_factorization",
        num_train=32,
        num_test=32,
        batch_size=32,
        teacher_epochs=1,
        epochs=1,
        max_trials=2,
        directory=tmp_path,
    )
    assert summary["completed_trials"] == 2
    # The best of the trials the tuner recorded: a mean of five accuracies
    # on 32 test images, so a multiple of 1 / 160.
    trials = (tmp_path / "imb").glob("trial_*/trial.json")
    scores = [json.loads(path.read_text())["score"] for path in trials]
    assert len(scores) == 2
    assert summary["best_score"] == max(scores)
    assert summary["best_score"] * 160 == pytest.approx(
        round(summary["best_score"] * 160), abs=1e-4
    )
    assert "beta" in summary["best_hyperparameters"]
    saved = json.loads((tmp_path / "imb" / "best.json").read_text())
    assert saved["best_hyperparameters"] == summary["best_hyperparameters"]


WRN = dict(teacher="wrn-10-1", common="wrn-10-1", task="wrn-10-1")


def test_factorize_classifier_from_an_image_folder(tmp_path, eager):
    folder = write_image_folder(tmp_path / "images")
    result = run_example(
        "factorize_classifier",
        image_folder=folder,
        image_size=16,
        batch_size=8,
        teacher_epochs=1,
        epochs=1,
        save_dir=tmp_path / "factors",
        **WRN,
    )
    assert result["num_classes"] == 3
    assert result["teacher_features"] == [
        "stage1_out",
        "stage2_out",
        "final_relu",
    ]
    # The reported accuracy is the saved factor network's on the held-out
    # images of the folder (the example's split).
    model = kfactor.assemble(kfactor.load_factors(str(tmp_path / "factors")))
    test, _ = load_image_folder(
        folder,
        "label",
        image_size=(16, 16),
        batch_size=8,
        subset="validation",
        validation_split=0.2,
    )
    correct = [
        np.argmax(model(images)["label"], -1) == labels["label"]
        for images, labels in test
    ]
    assert result["factor_accuracy"] == pytest.approx(
        np.mean(np.concatenate(correct))
    )


def test_factorize_classifier_from_local_tfds(tmp_path, eager):
    with tfds.testing.mock_data(num_examples=16):
        result = run_example(
            "factorize_classifier",
            data_dir=tmp_path,
            batch_size=8,
            teacher_epochs=1,
            epochs=1,
            infomax_levels=0,
            **WRN,
        )
    assert result["num_classes"] == 10
    assert result["teacher_features"] == "auto"


def test_factorize_classifier_says_where_data_must_come_from():
    with pytest.raises(ValueError, match="--data_dir"):
        run_example("factorize_classifier")


def test_distributed_factorization_on_this_machine(eager):
    result = run_example(
        "distributed_factorization",
        strategy="mirrored",
        num_train=64,
        num_test=32,
        batch_size=32,
        teacher_epochs=1,
        epochs=1,
    )
    assert result["replicas"] == len(tf.config.list_logical_devices("CPU"))
    assert result["chief"]
    assert set(result["val_accuracy"]) == {
        "shape",
        "scale",
        "orientation",
        "pos_x",
        "pos_y",
    }


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.large
def test_distributed_factorization_on_two_workers(tmp_path):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    script = ROOT / "examples" / "distributed_factorization.py"
    processes = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": index},
        }
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    "--strategy=multi_worker",
                    "--num_train=64",
                    "--num_test=32",
                    "--batch_size=32",
                    "--teacher_epochs=1",
                    "--epochs=1",
                    "--verbose=0",
                    f"--save_dir={tmp_path / f'factors{index}'}",
                ],
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    assert [r["replicas"] for r in results] == [2, 2]
    assert [r["chief"] for r in results] == [True, False]
    # Both workers hold the same model: the same validation accuracies.
    assert results[0]["val_accuracy"] == results[1]["val_accuracy"]
    assert (tmp_path / "factors0" / "result.json").exists()
    assert not (tmp_path / "factors1").exists()


def test_leakage_subspace_splits_every_leak_of_a_run(demo_run):
    module = load_example("leakage_subspace")
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(4000, 3)) * [2.0, 1.0, 0.1]
    # Shares of the variance: 0.798, 0.998, 1: two components hold 99%.
    assert module.components_for(codes, 0.99) == 2
    assert module.components_for(codes, 0.5) == 1
    assert module.components_for(codes, 1.0) == 2  # the rest keeps one

    values = flags.FlagValues()
    module.define_flags(values)
    # Two codes and 1,000 train codes keep the probes (logistic
    # regressions) few and quick.
    values(
        [
            "leakage_subspace",
            f"--run_dir={demo_run}",
            "--codes=shape,pos_x",
            "--train_examples=1000",
        ]
    )
    rows = module.run_with_flags(values)
    with open(demo_run / module.OUTPUT_FILE) as f:
        assert json.load(f) == {"variance": 0.99, "rows": rows}
    # Each code against the four other factors (dSprites forces none of
    # these cells).
    assert [(r["code"], r["factor"]) for r in rows] == [
        ("shape", "orientation"),
        ("shape", "pos_x"),
        ("shape", "pos_y"),
        ("shape", "scale"),
        ("pos_x", "orientation"),
        ("pos_x", "pos_y"),
        ("pos_x", "scale"),
        ("pos_x", "shape"),
    ]
    for row in rows:
        assert 1 <= row["components"] < 32
        assert row["variance_share"] >= 0.99 or row["components"] == 31
        for key in ("whole", "top", "rest"):
            assert -1.0 <= row[f"{key}_above_chance"] <= 1.0
    assert len(module.markdown(rows).splitlines()) == 2 + len(rows)
    with pytest.raises(flags.IllegalFlagValueError, match="variance"):
        values(["leakage_subspace", "--variance=1.5"])
    values(["leakage_subspace", f"--run_dir={demo_run}", "--codes=colour"])
    with pytest.raises(ValueError, match=r"codes=\['colour'\]"):
        module.run_with_flags(values)


def test_code_projection_measures_before_and_after_on_the_same_weights(
    tmp_path,
):
    module = load_example("code_projection")
    values = flags.FlagValues()
    module.define_flags(values)
    # The demo's splits (the shipped teacher's), networks untrained (no
    # epoch), a few hundred codes.
    values(
        [
            "code_projection",
            "--seeds=0",
            f"--runs_dir={tmp_path}",
            f"--out={tmp_path / 'projection.json'}",
            "--factor_epochs=0",
            "--eval_train_examples=256",
            "--eval_test_examples=128",
            "--verbose=0",
        ]
    )
    summary = module.run_with_flags(values)
    with open(tmp_path / "projection.json") as f:
        assert json.load(f) == summary
    (run,) = summary["runs"]
    tasks = ["shape", "scale", "orientation", "pos_x", "pos_y"]
    assert sorted(run["subspaces"]) == sorted(tasks)
    for record in run["subspaces"].values():
        assert 1 <= record["kept"] <= record["dim"] == 32
        assert record["train_accuracy_projected"] >= (
            record["train_accuracy_full"] - 0.001
        )
    assert sorted(run["single_task_subspaces"]) == sorted(tasks)
    for when in ("before", "after"):
        assert sorted(run[when]["accuracy"]) == sorted(tasks)
        assert set(run[when]["leakage"]) == {"linear", "knn"}
        for probe in ("linear", "knn"):
            single = run[when]["single_task"][probe]
            assert 0 <= single["cells_not_below"] <= single["cells"]
            assert -1.0 <= single["worst"] <= 1.0
    assert "| worst leakage cell, linear, mean |" in module.table([run])
    assert "| cells not below single-task, knn, mean |" in module.table([run])

    # The saved weights are the trained ones: loading them measures the
    # same "before".
    config = module.DemoConfig(
        training_seed=0,
        output_dir=str(tmp_path / "seed0"),
        factor_epochs=0,
        eval_train_examples=256,
        eval_test_examples=128,
        verbose=0,
    )
    factorizer, test_ds = module.trained_factorizer(config)
    reloaded = module.measure(factorizer, test_ds, config)
    assert reloaded == {
        k: v for k, v in run["before"].items() if k != "single_task"
    }
    # Every training seed reads the same shipped reference.
    other_seed = module.shipped_single_task_networks(
        module.DemoConfig(training_seed=1)
    )
    assert sorted(other_seed.task_names) == sorted(tasks)
