"""The demo's baselines: shipped pretrained, checked, or trained in the run."""

import dataclasses
import json
import re

from kfactor.lab import demo
from kfactor.lab.demo import baselines
from kfactor.lab.demo.report import KD_STUDENT
from kfactor.lab.demo.report import SINGLE_TASK
from kfactor.lab.evaluation.predictions import evaluate_predictions

import keras
import numpy as np
import pytest


def test_shipped_baselines_fit_the_default_demo():
    config = demo.DemoConfig()
    info = baselines.check_pretrained_baselines(config)
    assert info["config"] == baselines.baseline_config(config)
    assert (
        info["config"]["run_seed"] == 0 and not info["config"]["train_teacher"]
    )
    assert info["command"] == "python examples/make_pretrained_baselines.py"


def test_shipped_baselines_score_their_recorded_accuracy():
    config = demo.DemoConfig()
    models, info = baselines.load_pretrained_baselines(config)
    assert sorted(models) == sorted([KD_STUDENT, SINGLE_TASK])
    accuracies, _ = evaluate_predictions(
        models, demo.dsprites_splits(config)[1]
    )
    # Within 10 of the 5,000 images: another CPU's kernels round logits
    # otherwise and can flip a near tie; wrong weights miss by far more.
    for name, scores in info["test_accuracy"].items():
        for task, accuracy in scores.items():
            assert accuracies[name][task] == pytest.approx(accuracy, abs=2e-3)


@pytest.mark.parametrize(
    "change, named",
    [
        (dict(training_seed=1), "run_seed=0"),
        (dict(widths=(8,) * 6), "widths="),
        (dict(train_teacher=True), "train_teacher=False"),
        (dict(held_out=("scale",)), "held_out=[]"),
        (dict(kd_epochs=3), "kd_epochs=5"),
        (dict(single_task_epochs=2), "single_task_epochs=5"),
        (dict(learning_rate=1e-3), "learning_rate=0.002"),
    ],
)
def test_pretrained_baselines_refuse_a_run_they_do_not_fit(change, named):
    config = dataclasses.replace(demo.DemoConfig(), **change)
    with pytest.raises(ValueError, match=re.escape(named)) as raised:
        baselines.check_pretrained_baselines(config)
    assert "--train_baselines" in str(raised.value)


def test_only_the_wanted_baselines_are_checked():
    defaults = demo.DemoConfig()
    check = baselines.check_pretrained_baselines
    # Trained in the run, or none asked for: nothing to check.
    assert (
        check(
            dataclasses.replace(defaults, training_seed=3, train_baselines=True)
        )
        is None
    )
    assert (
        check(dataclasses.replace(defaults, kd_epochs=0, single_task_epochs=0))
        is None
    )
    # The single-task networks alone still fit when the KD epochs differ.
    assert check(dataclasses.replace(defaults, kd_epochs=0)) is not None


def test_a_missing_file_names_it_and_the_flag(tmp_path):
    missing = str(tmp_path / "baselines.json")
    with pytest.raises(ValueError, match="missing.*--train_baselines"):
        baselines.check_pretrained_baselines(demo.DemoConfig(), missing)


def test_bad_config_is_refused_by_the_demos_check_before_any_work():
    config = dataclasses.replace(demo.DemoConfig(), training_seed=2)
    with pytest.raises(ValueError, match="--train_baselines"):
        demo.check_config(config)


# === The tiny demo run (tests/conftest.py: --train_baselines) ===


@pytest.fixture(scope="module")
def tiny_run(demo_run):
    with open(demo_run / demo.REPORT_FILE) as f:
        config = demo.run_config(json.load(f))
    teacher = keras.saving.load_model(demo_run / demo.TEACHER_FILE)
    return demo_run, config, teacher


def test_the_run_reports_where_its_baselines_come_from(tiny_run):
    run, config, _ = tiny_run
    with open(run / demo.REPORT_FILE) as f:
        report = json.load(f)
    assert report["baselines"]["source"] == "trained"
    assert report["baselines"]["trained_with"] == baselines.baseline_config(
        config
    )
    assert report["kd_student_train_seconds"] > 0


def test_a_baseline_trained_in_the_run_is_the_one_the_script_trains(tiny_run):
    """Each baseline starts from the run's seed: the factorization before it
    changes nothing, so the shipped ones are what `--train_baselines` gives."""
    run, config, teacher = tiny_run
    only_kd = dataclasses.replace(config, single_task_epochs=0)
    models, _ = baselines.train_baselines(
        teacher, demo.dsprites_splits(only_kd)[0], only_kd
    )
    in_run = keras.saving.load_model(run / demo.KD_STUDENT_FILE)
    for trained, saved in zip(models[KD_STUDENT].weights, in_run.weights):
        np.testing.assert_allclose(trained, saved, atol=1e-5, rtol=0)


def test_get_baselines_loads_shipped_files_without_training(
    tiny_run, tmp_path, monkeypatch
):
    _, config, teacher = tiny_run
    # The KD student alone: the shipped single-task file is loaded above.
    config = dataclasses.replace(config, single_task_epochs=0)
    train_ds = demo.dsprites_splits(config)[0]
    trained, seconds = baselines.train_baselines(teacher, train_ds, config)
    for name, model in trained.items():
        path = str(tmp_path / f"{name.replace(' ', '_')}.keras")
        model.save(path)
        epochs_field = baselines.BASELINES[name][0]
        monkeypatch.setitem(baselines.BASELINES, name, (epochs_field, path))
    info_path = tmp_path / "baselines.json"
    info_path.write_text(
        json.dumps(
            {
                "config": baselines.baseline_config(config),
                "train_seconds": seconds,
            }
        )
    )
    monkeypatch.setattr(baselines, "PRETRAINED_BASELINES_INFO", str(info_path))
    shipped = dataclasses.replace(config, train_baselines=False)
    models, entries = baselines.get_baselines(teacher, train_ds, shipped)
    assert entries["baselines"]["source"] == "pretrained"
    assert entries["kd_student_train_seconds"] == 0.0
    assert entries["baselines"]["train_seconds"] == pytest.approx(seconds)
    images = next(iter(demo.dsprites_splits(config)[1]))[0]
    for name in trained:
        want = trained[name](images)
        got = models[name](images)
        for task in want:
            np.testing.assert_allclose(got[task], want[task], atol=1e-5)


def test_a_broken_shipped_file_is_one_error_naming_it_and_the_fix(
    tmp_path, monkeypatch
):
    broken = tmp_path / "kd.keras"
    broken.write_bytes(b"not a zip archive")
    monkeypatch.setitem(
        baselines.BASELINES, KD_STUDENT, ("kd_epochs", str(broken))
    )
    config = dataclasses.replace(demo.DemoConfig(), single_task_epochs=0)
    with pytest.raises(ValueError, match="loadable Keras model") as raised:
        baselines.load_pretrained_baselines(config)
    assert str(broken) in str(raised.value)
    assert "--train_baselines" in str(raised.value)
