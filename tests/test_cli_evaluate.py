"""`kfactor evaluate` on the tiny demo run (`demo_run`, conftest.py)."""

import contextlib
import io
import json
import os

from kfactor.lab import demo

import keras
import pytest
from absl import app

from tests.test_cli_factors import run_cli

FIGURES = (
    "accuracy.png",
    "mi_heatmaps.png",
    "leakage.png",
    "leakage_knn.png",
    "probe_mi.png",
)
#: Largest |evaluate - demo| of a disentanglement number (see the test).
DISENTANGLEMENT_TOLERANCE = 1e-4
#: The settings that choose the images of the train and test splits.
SPLIT_FIELDS = ("num_train", "num_test", "batch_size", "seed")


def read_report(directory):
    with open(os.path.join(directory, demo.REPORT_FILE)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def evaluation(demo_run):
    """`kfactor evaluate RUN_DIR` with the default --out, and its stdout."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        run_cli("evaluate", str(demo_run))
    return demo_run / demo.EVALUATION_SUBDIR, stdout.getvalue()


def saved_artefacts_part(run):
    """The demo report less what only the run itself measures: the
    single-task baseline (trained in the run, not saved), the common-factor
    section, the transfer table (its random-encoder floor is built in the
    run), the orientation table and the leakage of sampled task codes (a
    saved task factor serves its code mean, not the posterior's variance)."""
    run = dict(run)
    run["tasks"] = {
        task: {k: v for k, v in scores.items() if k != "single_task_accuracy"}
        for task, scores in run["tasks"].items()
    }
    run["disentanglement"] = {
        k: v
        for k, v in run["disentanglement"].items()
        if k != "single_task_leakage" and not k.endswith("_sampled")
    }
    for key in ("common_factor", "orientation_accuracy", "transfer"):
        run.pop(key, None)
    return run


def largest_difference(a, b, path="report"):
    """The largest |a - b| over the numbers of two JSON values of the same
    structure (keys, lengths and non-numbers must be equal)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), path
        return max(
            [0.0] + [largest_difference(a[k], b[k], f"{path}.{k}") for k in a]
        )
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        return max(
            [0.0]
            + [
                largest_difference(x, y, f"{path}[{i}]")
                for i, (x, y) in enumerate(zip(a, b))
            ]
        )
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        assert isinstance(b, (int, float)), path
        return abs(a - b)
    assert a == b, path
    return 0.0


def test_a_run_directory_reproduces_the_demo_numbers(demo_run, evaluation):
    out, stdout = evaluation
    run, report = read_report(demo_run), read_report(out)
    assert "single_task_leakage" in run["disentanglement"]
    run = saved_artefacts_part(run)
    # The saved factors and models give the in-memory ones' accuracies.
    assert report["tasks"] == run["tasks"]
    assert "kd_student_accuracy" in report["tasks"]["shape"]
    # The saved factors' batch normalization is folded into their
    # convolutions: their codes equal the in-memory ones to float32
    # rounding, and the scores computed from them (MI estimates, DCI) move
    # by about 1e-5 (measured 1.6e-5); accuracies and probes are equal.
    assert (
        largest_difference(report["disentanglement"], run["disentanglement"])
        <= DISENTANGLEMENT_TOLERANCE
    )
    compared = report["compared_with_run"]
    assert compared["max_abs_accuracy_diff"] == 0.0
    assert 0.0 <= compared["max_abs_score_diff"] <= DISENTANGLEMENT_TOLERANCE
    assert report["config"] == run["config"]
    # The demo's table, row for row (report.json sorts the tasks).
    assert set(demo.format_table(run).splitlines()) <= set(stdout.splitlines())
    assert "max |evaluate - demo|: accuracy 0, scores " in stdout
    for name in FIGURES:
        assert os.path.getsize(out / name) > 1000, name


def test_an_earlier_evaluation_is_kept_unless_asked(demo_run, evaluation):
    with pytest.raises(app.UsageError, match="--overwrite"):
        run_cli("evaluate", str(demo_run))


def test_factor_sources_with_a_teacher_and_the_run_settings(demo_run, tmp_path):
    factors = demo_run / "factors"
    config = read_report(demo_run)["config"]
    run_cli(
        "evaluate",
        str(factors / "common"),
        str(factors / "scale"),
        str(factors / "shape"),
        f"--teacher={demo_run / demo.TEACHER_FILE}",
        f"--out={tmp_path}",
        *(f"--{name}={config[name]}" for name in SPLIT_FIELDS),
        "--eval_train_examples=128",  # fewer codes: faster metrics
        "--eval_test_examples=128",
    )
    report = read_report(tmp_path)
    expected = read_report(demo_run)["tasks"]
    # Same test images, same accuracies; no KD student unless given.
    assert sorted(report["tasks"]) == ["scale", "shape"]
    for task, scores in report["tasks"].items():
        assert scores == {
            key: expected[task][key]
            for key in ("teacher_accuracy", "factor_accuracy")
        }
    assert report["config"]["eval_train_examples"] == 128
    # The code blocks in dSprites factor order.
    assert report["disentanglement"]["leakage"]["block_names"] == [
        "shape",
        "scale",
    ]
    assert "compared_with_run" not in report
    for name in FIGURES:
        assert os.path.getsize(tmp_path / name) > 1000, name


@pytest.fixture(scope="module")
def wrong_teacher(tmp_path_factory):
    """A .keras teacher with only a 4-class 'shape' output."""
    images = keras.Input((64, 64, 1))
    features = keras.layers.GlobalAveragePooling2D()(images)
    model = keras.Model(images, {"shape": keras.layers.Dense(4)(features)})
    path = tmp_path_factory.mktemp("teacher") / "teacher.keras"
    model.save(path)
    return path


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "Received: none"),
        (["/nonexistent/run"], "does not exist"),
        (["{run}/factors", "--out={tmp}"], "--teacher=.*has no report.json"),
        (["{run}/factors", "--teacher={run}/teacher.keras"], "--out=DIR"),
        (
            ["{run}/factors", "--teacher={tmp}/none.keras", "--out={tmp}"],
            "none.keras \\(missing\\)",
        ),
        (
            ["{run}/factors", "--teacher={bad}", "--out={tmp}"],
            "mismatched \\{'shape': 4, 'scale': None",
        ),
        (
            ["{run}", "--kd_student={bad}", "--out={tmp}"],
            "Expected the KD student to output",
        ),
        (["{broken}"], "'config' object"),
    ],
)
def test_bad_input_is_one_clear_error(
    argv, message, demo_run, wrong_teacher, tmp_path
):
    broken = tmp_path / "broken_run"
    broken.mkdir()
    (broken / demo.REPORT_FILE).write_text("{}")
    paths = dict(run=demo_run, tmp=tmp_path, bad=wrong_teacher, broken=broken)
    with pytest.raises(app.UsageError, match=message):
        run_cli("evaluate", *(arg.format(**paths) for arg in argv))
    assert not os.path.exists(tmp_path / demo.REPORT_FILE)
