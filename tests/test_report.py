"""Disentanglement report, code collection and the KD baseline."""

from kfactor import codes as codes_lib
from kfactor import report as report_lib
from kfactor.baseline import DistilledStudent

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers

FACTORS = ["a", "b", "c"]


def synthetic_codes(num, seed, leak=False):
    """Each task block stores its own factor; the teacher mixes them all."""
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, 4, size=(num, 3))
    noise = lambda d: 0.05 * rng.standard_normal((num, d))  # noqa: E731
    codes = {
        name: np.stack([factors[:, k], rng.standard_normal(num)], 1) + noise(2)
        for k, name in enumerate(FACTORS)
    }
    if leak:
        codes["a"][:, 1] = factors[:, 1] + 0.05 * rng.standard_normal(num)
    rotation = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    codes["teacher"] = factors @ rotation + noise(3)
    codes["common"] = rng.standard_normal((num, 2))
    return {k: v.astype("float32") for k, v in codes.items()}, factors


def make_report(leak=False):
    train, train_factors = synthetic_codes(1500, 0, leak)
    test, test_factors = synthetic_codes(600, 1, leak)
    return report_lib.disentanglement_report(
        train, train_factors, test, test_factors, FACTORS, FACTORS
    )


def test_disentangled_task_codes_beat_a_mixed_teacher_latent():
    report = make_report()
    metrics = report["metrics"]
    assert metrics["task_codes"]["mig"] > 0.5
    assert metrics["task_codes"]["mig"] > 2 * metrics["teacher"]["mig"]
    assert report_lib.mig_ratio(report) > 2
    leakage = report["leakage"]
    matrix = np.array(leakage["matrix"])
    assert np.all(np.diag(matrix) > 0.95)
    assert leakage["max_offdiag_above_chance"] < 0.05
    # The random common code transfers to no factor.
    for probe in report["transfer"].values():
        assert probe["accuracy"] < probe["chance"] + 0.1
    assert np.array(report["mi_per_dim"]["task_codes"]).shape == (6, 3)


def test_a_leaking_task_code_is_caught():
    leakage = make_report(leak=True)["leakage"]
    assert leakage["max_offdiag_above_chance"] > 0.5
    block_b = leakage["factor_names"].index("b")
    assert np.array(leakage["matrix"])[0, block_b] > 0.95


def test_summary_rows_name_every_headline_number():
    names = [name for name, _ in report_lib.summary_rows(make_report())]
    assert "mig (task_codes)" in names and "sap (teacher)" in names
    assert names[-1].startswith("leakage")


def test_collect_codes_stops_at_max_examples_and_checks_labels():
    images, labels = helpers.blob_images(50)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    readers = {"mean": lambda x: tf.reduce_mean(x, axis=[1, 2])}
    codes, factors = codes_lib.collect_codes(readers, ds, ["row", "col"], 20)
    assert codes["mean"].shape == (20, 1) and factors.shape == (20, 2)
    np.testing.assert_array_equal(factors[:, 0], labels["row"][:20])
    with pytest.raises(ValueError, match=r"no labels for factors \['size'\]"):
        codes_lib.collect_codes(readers, ds, ["size"])


def test_kd_student_learns_from_labels_and_teacher_only_updates_student():
    teacher = helpers.train_teacher(
        helpers.tiny_teacher(), helpers.blob_dataset(256), epochs=2
    )
    before = [np.array(w) for w in teacher.weights]
    student = helpers.kfactor.multitask_teacher(
        helpers.TINY_TASKS, encoder=helpers.tiny_encoder(name="s"), name="s"
    )
    distilled = DistilledStudent(teacher, student)
    distilled.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = distilled.fit(helpers.blob_dataset(512), epochs=4, verbose=0)
    logs = history.history
    assert {"loss", "cls_loss", "kd_loss", "row_accuracy"} <= set(logs)
    assert logs["row_accuracy"][-1] > 0.6 and logs["col_accuracy"][-1] > 0.6
    for a, b in zip(before, teacher.weights):
        np.testing.assert_array_equal(a, np.array(b))
    wrong = helpers.kfactor.multitask_teacher(
        {"row": 4}, encoder=helpers.tiny_encoder(name="w"), name="w"
    )
    with pytest.raises(ValueError, match="same classes"):
        DistilledStudent(teacher, wrong)
