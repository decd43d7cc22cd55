"""`kfactor demo` end to end on a tiny configuration, through the CLI.

The run is the session fixture `demo_run` (conftest.py), shared with the
`kfactor evaluate` tests.
"""

import json
import os

from kfactor import cli
from kfactor import demo

import numpy as np
import pytest


def test_demo_writes_the_report_with_every_promised_field(demo_run, capsys):
    with open(os.path.join(demo_run, demo.REPORT_FILE)) as f:
        report = json.load(f)
    assert report["num_train_images"] == 384
    assert report["num_test_images"] == 256
    assert report["wall_seconds"] > 0
    assert 2**20 < report["peak_rss_bytes"] < 8 * 2**30
    assert report["factorization_images_per_second"] > 0
    tasks = report["tasks"]
    assert sorted(tasks) == sorted(demo.data_lib.DSPRITES_TASKS)
    for scores in tasks.values():
        for key in (
            "teacher_accuracy",
            "factor_accuracy",
            "kd_student_accuracy",
        ):
            assert 0.0 <= scores[key] <= 1.0
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


def test_train_split_repeats_and_evaluation_reads_one_pass(monkeypatch):
    import tensorflow as tf

    config = demo.DemoConfig(
        num_train=100, num_test=50, batch_size=32, eval_train_examples=1000
    )
    train_ds, test_ds = demo.dsprites_splits(config)
    assert demo.steps_per_epoch(config) == 4
    assert train_ds.cardinality() == tf.data.INFINITE_CARDINALITY
    assert int(test_ds.cardinality()) == 2
    monkeypatch.setattr(demo, "disentanglement_report", lambda *a, **k: a)
    readers = {"flat": lambda images: tf.reshape(images, [-1, 4096])[:, :3]}
    train_codes, train_factors, *_ = demo.evaluate_readers(
        readers, ["shape"], train_ds, test_ds, config
    )
    # Each of the 100 train images once, though 1,000 were asked for.
    assert train_codes["flat"].shape == (100, 3)
    assert len(np.unique(train_factors, axis=0)) == 100
