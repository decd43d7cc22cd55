"""Disentanglement report, code collection and the KD baseline."""

from kfactor.lab.baselines import DistilledStudent
from kfactor.lab.evaluation import codes as codes_lib
from kfactor.lab.evaluation import report as report_lib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures

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
    # One mixing for train and test: the same teacher.
    mixing = np.random.default_rng(99).standard_normal((3, 3))
    rotation = np.linalg.qr(mixing)[0]
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
    assert "leakage (kNN probe): max non-intrinsic cell" in names
    assert "probe MI / H: task codes, other factors" in names
    rows = dict(report_lib.summary_rows(make_report()))
    assert rows["probe MI / H: task codes, own factor"] > 0.9
    assert abs(rows["probe MI / H: task codes, other factors"]) < 0.05


def test_collect_codes_stops_at_max_examples_and_checks_labels():
    images, labels = fixtures.blob_images(50)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    readers = {"mean": lambda x: tf.reduce_mean(x, axis=[1, 2])}
    codes, factors = codes_lib.collect_codes(readers, ds, ["row", "col"], 20)
    assert codes["mean"].shape == (20, 1) and factors.shape == (20, 2)
    np.testing.assert_array_equal(factors[:, 0], labels["row"][:20])
    with pytest.raises(ValueError, match=r"no labels for factors \['size'\]"):
        codes_lib.collect_codes(readers, ds, ["size"])


def test_kd_student_learns_from_labels_and_teacher_only_updates_student():
    teacher = fixtures.train_teacher(
        fixtures.tiny_teacher(), fixtures.blob_dataset(256), epochs=2
    )
    before = [np.array(w) for w in teacher.weights]
    student = fixtures.kfactor.zoo.multitask_teacher(
        fixtures.TINY_TASKS, encoder=fixtures.tiny_encoder(name="s"), name="s"
    )
    distilled = DistilledStudent(teacher, student)
    distilled.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = distilled.fit(fixtures.blob_dataset(512), epochs=4, verbose=0)
    logs = history.history
    assert {"loss", "cls_loss", "kd_loss", "row_accuracy"} <= set(logs)
    assert logs["row_accuracy"][-1] > 0.6 and logs["col_accuracy"][-1] > 0.6
    for a, b in zip(before, teacher.weights):
        np.testing.assert_array_equal(a, np.array(b))
    wrong = fixtures.kfactor.zoo.multitask_teacher(
        {"row": 4}, encoder=fixtures.tiny_encoder(name="w"), name="w"
    )
    with pytest.raises(ValueError, match="same classes"):
        DistilledStudent(teacher, wrong)


def test_probe_mi_is_the_headline_matrix_and_shares_the_linear_probes():
    report = make_report()
    mi = report["probe_mi"]
    assert mi["block_names"] == ["common", *FACTORS, "teacher"]
    matrix = np.array(mi["matrix"])
    entropy = np.log(4.0)
    # Each task block determines its own factor and knows nothing else.
    for k, name in enumerate(FACTORS):
        row = mi["block_names"].index(name)
        assert matrix[row, k] == pytest.approx(entropy, abs=0.1)
        others = np.delete(matrix[row], k)
        assert np.all(np.abs(others) < 0.05)
    # The teacher latent mixes all three factors: it knows every one.
    assert np.all(matrix[-1] > 0.8 * entropy)
    # The random common code knows none.
    assert np.all(np.abs(matrix[0]) < 0.05)
    # The linear leakage is the same probes' accuracy (task rows).
    accuracy = np.array(mi["accuracy"])
    np.testing.assert_allclose(report["leakage"]["matrix"], accuracy[1:4])
    assert [report["transfer"][f]["accuracy"] for f in FACTORS] == (
        pytest.approx(accuracy[0])
    )


def test_excess_leakage_is_the_cellwise_difference_and_skips_intrinsic():
    leaky = make_report(leak=True)["leakage"]
    clean = make_report()["leakage"]
    excess = report_lib.excess_leakage(leaky, clean)
    np.testing.assert_allclose(
        excess["excess"],
        np.array(leaky["matrix"]) - np.array(clean["matrix"]),
    )
    # Block a leaks factor b: a large excess, found by the maximum...
    assert excess["max_nonintrinsic_excess"] > 0.5
    assert excess["nonintrinsic_cells"] == 6
    # ...unless that cell is declared intrinsic.
    excused = report_lib.excess_leakage(leaky, clean, {("a", "b"): "why"})
    assert excused["max_nonintrinsic_excess"] < 0.05
    assert excused["nonintrinsic_cells"] == 5
    # Rows follow the blocks both sections have.
    subset = dict(
        clean,
        block_names=["b"],
        matrix=[clean["matrix"][1]],
    )
    assert report_lib.excess_leakage(leaky, subset)["block_names"] == ["b"]
    with pytest.raises(ValueError, match="share no block"):
        report_lib.excess_leakage(leaky, dict(subset, block_names=["z"]))


def test_transfer_report_puts_common_between_random_floor_and_teacher():
    from kfactor.lab.evaluation.common_report import transfer_report

    train, train_f = synthetic_codes(1500, 0)
    test, test_f = synthetic_codes(600, 1)
    # A "common code" that learned factor c but was never trained on it,
    # and a random encoder that knows nothing.
    rng = np.random.default_rng(5)
    for codes, factors in ((train, train_f), (test, test_f)):
        codes["common"] = np.stack(
            [factors[:, 2] + 0.3 * rng.normal(size=len(factors))], 1
        )
        codes["random_encoder"] = rng.normal(size=(len(factors), 2))
    result = transfer_report(
        train, train_f, test, test_f, FACTORS, task_names=["a", "b"]
    )
    assert result["held_out"] == ["c"]
    assert result["representations"] == ["common", "teacher", "random_encoder"]
    c = result["factors"]["c"]
    assert c["held_out"] and not result["factors"]["a"]["held_out"]
    assert c["teacher"] > 0.95 and c["common"] > 0.8
    assert c["random_encoder"] < c["chance"] + 0.1
    assert c["common_minus_random"] == pytest.approx(
        c["common"] - c["random_encoder"]
    )
