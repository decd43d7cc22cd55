"""Projecting task code means onto the directions their factor network reads."""

from kfactor.layers import TaskFactor
from kfactor.training import code_subspace

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn import linear_model

from tests import fixtures


def faint_leak_codes(num=3000, seed=0):
    """Codes whose loud direction is the own label and whose faint one (a
    hundredth of the amplitude, under no noise) is another task's label."""
    rng = np.random.default_rng(seed)
    own = rng.integers(0, 2, num)
    other = rng.integers(0, 2, num)
    codes = np.zeros((num, 4))
    codes[:, 0] = 2.0 * own - 1.0 + 0.3 * rng.normal(size=num)
    codes[:, 1] = 0.01 * (2.0 * other - 1.0)
    codes[:, 2:] = 0.001 * rng.normal(size=(num, 2))
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    return codes @ rotation, own, other, rotation


def whitened_probe_accuracy(codes, labels):
    """Train/test accuracy of a logistic probe on whitened codes."""
    half = len(codes) // 2
    center = codes[:half].mean(0)
    values, vectors = np.linalg.eigh(
        np.cov(codes[:half] - center, rowvar=False)
    )
    keep = values > 1e-12 * values.max()
    white = (codes - center) @ vectors[:, keep] / np.sqrt(values[keep])
    probe = linear_model.LogisticRegression().fit(white[:half], labels[:half])
    return probe.score(white[half:], labels[half:])


def test_principal_directions_are_the_covariances_eigenpairs():
    rng = np.random.default_rng(1)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    codes = rng.normal(size=(20000, 3)) * [2.0, 1.0, 0.1] @ rotation + 5.0

    center, variances, directions = code_subspace.principal_directions(codes)

    np.testing.assert_allclose(center, 5.0, atol=0.05)
    np.testing.assert_allclose(variances, [4.0, 1.0, 0.01], rtol=0.05)
    np.testing.assert_allclose(directions @ directions.T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(
        np.abs(directions @ rotation.T), np.eye(3), atol=0.02
    )


def test_projection_keeps_the_center_and_the_kept_directions_only():
    center = np.array([1.0, 2.0, 3.0])
    subspace = code_subspace.CodeSubspace(
        center, np.array([[1.0, 0.0, 0.0]]), np.array([2.0, 1.0, 0.0]), 1, 1
    )
    codes = np.array([[4.0, 7.0, -1.0]])

    np.testing.assert_allclose(subspace.project(codes), [[4.0, 2.0, 3.0]])
    np.testing.assert_allclose(
        subspace.project(subspace.project(codes)), subspace.project(codes)
    )
    assert subspace.kept == 1
    assert subspace.variance_share == pytest.approx(2.0 / 3.0)


def test_the_faint_direction_holding_another_label_is_removed():
    codes, own, other, rotation = faint_leak_codes()
    # A head that reads the own label off the loud direction only.
    weights = np.stack([-rotation[0], rotation[0]], axis=1)

    def head(z):
        return z @ weights

    subspace = code_subspace.fit_code_subspace(
        head, np.zeros_like(codes), codes, own
    )
    projected = subspace.project(codes)

    assert subspace.kept == 1
    assert subspace.accuracy >= subspace.full_accuracy - 0.001
    assert whitened_probe_accuracy(codes, other) > 0.95  # leaks before
    assert whitened_probe_accuracy(projected, other) < 0.6
    assert whitened_probe_accuracy(projected, own) > 0.95


def test_a_head_reading_every_direction_keeps_every_direction():
    codes, own, other, rotation = faint_leak_codes()
    # The label is the faint direction's: dropping it loses everything.
    weights = np.stack([-rotation[1], rotation[1]], axis=1)

    subspace = code_subspace.fit_code_subspace(
        lambda z: z @ weights, np.zeros_like(codes), codes, other
    )

    assert subspace.kept >= 2
    assert subspace.accuracy == pytest.approx(subspace.full_accuracy)


def tiny_task_factor(seed=0):
    keras.utils.set_random_seed(seed)
    factor = code_subspace_factor()
    factor.build(((None, *fixtures.TINY_SHAPE), (None, 6)))
    return factor


def code_subspace_factor():
    return TaskFactor(
        fixtures.tiny_encoder(None, name="task_encoder"),
        num_classes=4,
        code_dim=6,
        initial_log_var=-2.0,
    )


def test_folding_makes_the_factors_mean_the_projected_mean():
    factor = tiny_task_factor()
    images, labels = fixtures.blob_images(200)
    before = factor.encode(images, training=False)
    subspace = code_subspace.fit_code_subspace(
        factor.head, np.zeros((200, 6)), before.mean, labels["row"], 0.5
    )

    code_subspace.fold_into_code_layer(factor, subspace)
    after = factor.encode(images, training=False)

    np.testing.assert_allclose(
        after.mean, subspace.project(before.mean), atol=1e-4
    )
    np.testing.assert_allclose(after.log_var, before.log_var, atol=1e-6)


def test_folding_refuses_a_subspace_of_another_size():
    factor = tiny_task_factor()
    subspace = code_subspace.CodeSubspace(
        np.zeros(5), np.eye(5)[:2], np.ones(5), 1, 1
    )

    with pytest.raises(ValueError, match="6-dim code"):
        code_subspace.fold_into_code_layer(factor, subspace)


class TwoTaskFactors:
    """The two attributes `project_task_codes` reads of a Factorizer."""

    def __init__(self):
        keras.utils.set_random_seed(3)
        self.common = keras.Sequential(
            [keras.layers.Flatten(), keras.layers.Dense(6)]
        )
        self.task_factors = {"row": code_subspace_factor()}
        self.task_factors["row"].build(
            ((None, *fixtures.TINY_SHAPE), (None, 6))
        )


def test_project_task_codes_projects_in_place_and_reports():
    networks = TwoTaskFactors()
    dataset = fixtures.blob_dataset(256)
    images, _ = fixtures.blob_images(256)
    before = networks.task_factors["row"].encode(images, training=False).mean

    subspaces = code_subspace.project_task_codes(
        networks, dataset, max_examples=256, max_accuracy_drop=0.05
    )
    after = networks.task_factors["row"].encode(images, training=False).mean

    assert list(subspaces) == ["row"]
    record = subspaces["row"].summary()
    assert record["dim"] == 6 and 1 <= record["kept"] <= 6
    assert record["train_accuracy_projected"] >= (
        record["train_accuracy_full"] - 0.05
    )
    np.testing.assert_allclose(
        after, subspaces["row"].project(before), atol=1e-4
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_accuracy_drop": 1.0}, "max_accuracy_drop"),
        ({"max_accuracy_drop": -0.1}, "max_accuracy_drop"),
        ({"max_examples": 0}, "max_examples"),
        ({"tasks": ["col"]}, "Expected tasks among"),
    ],
)
def test_project_task_codes_refuses_bad_arguments(kwargs, match):
    networks = TwoTaskFactors()
    weights = [w.numpy() for w in networks.task_factors["row"].weights]

    with pytest.raises(ValueError, match=match):
        code_subspace.project_task_codes(
            networks, fixtures.blob_dataset(64), **kwargs
        )
    for saved, weight in zip(weights, networks.task_factors["row"].weights):
        np.testing.assert_array_equal(saved, weight.numpy())


def test_project_task_codes_needs_the_tasks_labels():
    images, labels = fixtures.blob_images(64)
    unlabelled = tf.data.Dataset.from_tensor_slices(
        (images, {"col": labels["col"]})
    ).batch(32)

    with pytest.raises(ValueError, match=r"labels as a dict holding"):
        code_subspace.project_task_codes(TwoTaskFactors(), unlabelled)
