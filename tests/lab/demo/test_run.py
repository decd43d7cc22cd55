"""`kfactor demo` end to end on a tiny configuration, through the CLI.

The run is the session fixture `demo_run` (conftest.py), shared with the
`kfactor evaluate` tests.
"""

import json
import os

import kfactor
from kfactor import cli
from kfactor.lab import datasets as data_lib
from kfactor.lab import demo
from kfactor.lab.demo import sections

import numpy as np
import pytest


def np_mean_pairwise_cosine(codes):
    unit = codes / np.linalg.norm(codes, axis=-1, keepdims=True)
    cosines = unit @ unit.T
    n = len(codes)
    return (cosines.sum() - np.trace(cosines)) / (n * (n - 1))


def np_participation_ratio(codes):
    covariance = np.cov(codes, rowvar=False)
    return np.trace(covariance) ** 2 / np.sum(covariance**2)


def test_common_factor_numbers_are_those_of_the_published_common_code(
    demo_run,
):
    with open(os.path.join(demo_run, demo.REPORT_FILE)) as f:
        report = json.load(f)
    common = kfactor.load_factors(str(demo_run / "factors"))["common"]
    test_ds = demo.dsprites_splits(demo.run_config(report))[1]
    codes = np.concatenate(
        [np.asarray(common(images), "float64") for images, _ in test_ds]
    )[: report["common_factor"]["num_codes"]]
    measured = report["common_factor"]
    assert measured["mean_pairwise_cosine"] == pytest.approx(
        np_mean_pairwise_cosine(codes), abs=1e-4
    )
    assert measured["participation_ratio"] == pytest.approx(
        np_participation_ratio(codes), rel=1e-3
    )


def test_published_task_codes_vary_only_along_the_kept_directions(demo_run):
    # The tiny run passes --project_codes.
    with open(os.path.join(demo_run, demo.REPORT_FILE)) as f:
        report = json.load(f)
    subspaces = report["code_subspaces"]
    assert sorted(subspaces) == sorted(data_lib.DSPRITES_TASKS)
    factors = kfactor.load_factors(str(demo_run / "factors"))
    images = np.concatenate(
        [
            images
            for images, _ in demo.dsprites_splits(demo.run_config(report))[1]
        ]
    )
    for task, record in subspaces.items():
        assert 1 <= record["kept"] <= record["dim"] == 32
        assert record["train_accuracy_projected"] >= (
            record["train_accuracy_full"] - 0.001
        )
        means = np.asarray(factors[task].encode(images), "float64")
        spectrum = np.linalg.svd(means - means.mean(0), compute_uv=False)
        # Past the kept directions, the published mean holds nothing.
        assert np.all(spectrum[record["kept"] :] < 1e-4 * spectrum[0])


def test_the_single_task_reference_is_projected_like_the_task_codes(
    demo_run,
):
    # With --project_codes the leakage comparison reads both sides
    # projected: the single-task networks keep the fewest directions on
    # which their own heads are as accurate.
    with open(os.path.join(demo_run, demo.REPORT_FILE)) as f:
        report = json.load(f)
    subspaces = report["single_task_code_subspaces"]
    assert sorted(subspaces) == sorted(data_lib.DSPRITES_TASKS)
    for record in subspaces.values():
        assert 1 <= record["kept"] <= record["dim"] == 32
        assert record["train_accuracy_projected"] >= (
            record["train_accuracy_full"] - 0.001 - 1e-9
        )
    assert "single_task_leakage" in report["disentanglement"]


def test_demo_writes_the_report_with_every_promised_field(demo_run, capsys):
    with open(os.path.join(demo_run, demo.REPORT_FILE)) as f:
        report = json.load(f)
    assert report["num_train_images"] == 384
    assert report["num_test_images"] == 256
    assert report["wall_seconds"] > 0
    assert 2**20 < report["peak_rss_bytes"] < 8 * 2**30
    assert report["factorization_images_per_second"] > 0
    tasks = report["tasks"]
    assert sorted(tasks) == sorted(data_lib.DSPRITES_TASKS)
    for scores in tasks.values():
        assert set(scores) == {
            "teacher_accuracy",
            "factor_accuracy",
            "single_task_accuracy",
            "kd_student_accuracy",
        }
    assert report["teacher"]["source"] == "trained"
    assert report["teacher"]["trained_with"]["teacher_num_train"] == 384
    # The common-factor section re-scores the factor networks from their
    # codes: with their own z_common it must give the accuracies above.
    common = report["common_factor"]
    assert common["num_codes"] == 256  # its cosine etc.: the next test
    for task, scores in common["mean_replacement"].items():
        assert scores["accuracy"] == pytest.approx(
            tasks[task]["factor_accuracy"], abs=1 / 256
        )
        assert scores["drop"] == pytest.approx(
            scores["accuracy"] - scores["mean_common_accuracy"]
        )
    assert set(common["probes"]) == set(tasks)
    # Correct up to symmetry includes exactly correct.
    for model in ("teacher", "factor networks", "single-task networks"):
        orientation = report["orientation_accuracy"][model]
        assert orientation["symmetry_aware"] >= orientation["raw"]
    for probe in ("linear", "knn"):
        single = report["disentanglement"]["single_task_leakage"][probe]
        assert np.asarray(single["excess"]).shape == (5, 5)
        assert single["nonintrinsic_cells"] == 18
        kf = report["disentanglement"][
            "leakage" if probe == "linear" else "leakage_knn"
        ]
        np.testing.assert_allclose(
            np.asarray(kf["matrix"]) - np.asarray(single["matrix"]),
            single["excess"],
        )
        assert {c["factor"] for c in kf["intrinsic_cells"]} == {"shape"}
    mi = report["disentanglement"]["probe_mi"]
    assert mi["block_names"] == [
        "common",
        *data_lib.DSPRITES_TASKS,
        "teacher",
    ]
    assert np.asarray(mi["matrix"]).shape == (7, 5)
    assert np.all(np.asarray(mi["matrix"]) <= np.asarray(mi["entropy"]) + 1e-9)
    transfer = report["transfer"]
    assert transfer["representations"] == [
        "common",
        "teacher",
        "random_encoder",
    ]
    assert transfer["held_out"] == []
    for factor, row in transfer["factors"].items():
        assert row["common"] == pytest.approx(
            report["disentanglement"]["transfer"][factor]["accuracy"]
        )
    scores = report["disentanglement"]["metrics"]
    for representation in ("teacher", "task_codes"):
        assert {"mig", "sap", "modularity"} <= set(scores[representation])
    leakage = report["disentanglement"]["leakage"]
    assert len(leakage["matrix"]) == 5 and len(leakage["matrix"][0]) == 5
    # Saved, reloaded, assembled and exported without changing an output.
    assert report["assembled_max_abs_diff"] <= 1e-5
    assert report["export_max_abs_diff"] <= 1e-5
    assert os.path.isdir(os.path.join(report["factors_dir"], "common"))
    assert os.path.isfile(os.path.join(report["export_dir"], "saved_model.pb"))


def test_demo_draws_the_figures_and_saves_the_teacher(demo_run):
    for name in (
        "accuracy.png",
        "mi_heatmaps.png",
        "leakage.png",
        "leakage_knn.png",
        "probe_mi.png",
        "transfer.png",
        demo.TEACHER_FILE,
        demo.KD_STUDENT_FILE,
    ):
        path = os.path.join(demo_run, name)
        assert os.path.getsize(path) > 1000, name


def test_cli_refuses_unknown_commands_with_the_list():
    from absl import app

    with pytest.raises(app.UsageError, match="demo"):
        cli.run(["kfactor", "train"])
    with pytest.raises(app.UsageError, match="flags"):
        cli.run(["kfactor", "demo", "extra"])


def test_demo_config_rejects_nonsense():
    with pytest.raises(ValueError, match="num_train"):
        demo.DemoConfig(num_train=0)
    with pytest.raises(ValueError, match="factor_epochs"):
        demo.DemoConfig(factor_epochs=-1)
    with pytest.raises(ValueError, match="unknown factors: \\['colour'\\]"):
        demo.DemoConfig(held_out=("colour",))
    with pytest.raises(ValueError, match="no task to factorize"):
        demo.DemoConfig(held_out=data_lib.DSPRITES_TASKS)


def test_held_out_factors_get_no_task_factor_and_no_single_task_network():
    config = demo.DemoConfig(
        held_out=("scale", "pos_x"), widths=(8,) * 6, latent_dim=4
    )
    assert config.task_names == ("shape", "orientation", "pos_y")
    teacher = demo.build_teacher(config)
    factorizer = demo.build_factorizer(teacher, config)
    assert tuple(factorizer.task_names) == config.task_names
    networks = demo.build_single_task_networks(teacher, config)
    assert tuple(networks.task_names) == config.task_names


def test_train_split_repeats_and_evaluation_reads_one_pass(monkeypatch):
    import tensorflow as tf

    config = demo.DemoConfig(
        num_train=100, num_test=50, batch_size=32, eval_train_examples=1000
    )
    train_ds, test_ds = demo.dsprites_splits(config)
    assert demo.steps_per_epoch(config) == 4
    assert train_ds.cardinality() == tf.data.INFINITE_CARDINALITY
    assert int(test_ds.cardinality()) == 2
    monkeypatch.setattr(sections, "disentanglement_report", lambda *a, **k: a)
    readers = {"flat": lambda images: tf.reshape(images, [-1, 4096])[:, :3]}
    train_codes, train_factors, *_ = demo.evaluate_readers(
        readers, ["shape"], train_ds, test_ds, config
    )
    # Each of the 100 train images once, though 1,000 were asked for.
    assert train_codes["flat"].shape == (100, 3)
    assert len(np.unique(train_factors, axis=0)) == 100


@pytest.mark.parametrize(
    "flags, message",
    [
        (dict(seed=1), "trained on .* of this run's 5000 test images"),
        (dict(latent_dim=16), "latent_dim=32"),
        (dict(num_train=737280), "dSprites grid size"),
        (dict(num_train=0), "num_train >= 1"),
        (dict(training_seed=1), "run_seed=0.*--train_baselines"),
        (dict(kd_epochs=2), "kd_epochs=5.*--train_baselines"),
    ],
)
def test_bad_demo_flags_are_one_line_before_anything_is_written(
    tmp_path, flags, message
):
    from absl import app
    from absl import flags as absl_flags
    from absl.testing import flagsaver

    out = tmp_path / "run"
    absl_flags.FLAGS(["kfactor"])
    with flagsaver.flagsaver(output_dir=str(out), **flags):
        with pytest.raises(app.UsageError, match=message):
            cli.run(["kfactor", "demo"])
    assert not out.exists()


@pytest.mark.large  # a second tiny demo (~80 s): the suite stays under 10 min
def test_demo_with_held_out_factors_reports_their_transfer(tmp_path):
    report = demo.run_demo(
        demo.DemoConfig(
            num_train=128,
            num_test=128,
            held_out=("scale",),
            train_teacher=True,
            train_baselines=True,
            teacher_epochs=1,
            teacher_num_train=128,
            factor_epochs=1,
            single_task_epochs=0,
            widths=(4,) * 6,
            latent_dim=4,
            eval_train_examples=128,
            eval_test_examples=128,
            verbose=0,
            output_dir=str(tmp_path),
        )
    )
    assert "scale" not in report["tasks"] and "shape" in report["tasks"]
    transfer = report["transfer"]
    assert transfer["held_out"] == ["scale"]
    assert transfer["factors"]["scale"]["held_out"]
    assert not transfer["factors"]["shape"]["held_out"]
    assert "| scale (held out) |" in demo.format_table(report)
    assert os.path.getsize(tmp_path / "transfer.png") > 1000


def test_scores_report_is_the_part_demo_and_evaluate_share():
    from kfactor.lab.demo import report as report_lib

    config = demo.DemoConfig(num_train=100, num_test=50)
    accuracies = {
        report_lib.TEACHER: {"shape": 0.9, "scale": 0.8},
        report_lib.KD_STUDENT: {"shape": 0.7, "scale": 0.6},
        "unnamed model": {"shape": 0.1, "scale": 0.1},
    }
    report = report_lib.scores_report(
        config, ["shape"], accuracies, {"mig": 0.5}
    )
    assert report["config"]["num_train"] == 100
    assert report["num_test_images"] == 50
    assert report["tasks"] == {
        "shape": {"teacher_accuracy": 0.9, "kd_student_accuracy": 0.7}
    }
    assert report["disentanglement"] == {"mig": 0.5}
