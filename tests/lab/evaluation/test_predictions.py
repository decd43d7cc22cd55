"""`kfactor.lab.evaluation.predictions`: models' predictions and accuracies."""

from kfactor.lab.evaluation import predictions

import keras
import numpy as np
import pytest
import tensorflow as tf


def two_task_model(seed):
    images = keras.Input((4,))
    dense = keras.layers.Dense(
        3, kernel_initializer=keras.initializers.RandomNormal(seed=seed)
    )
    return keras.Model(images, {"a": dense(images), "b": images[:, :2]})


def labelled(num=10, batch_size=4):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(num, 4)).astype("float32")
    labels = {"a": rng.integers(0, 3, num), "b": rng.integers(0, 2, num)}
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return images, labels, dataset.batch(batch_size)


def test_collect_predictions_runs_every_model_over_the_whole_dataset():
    models = {"one": two_task_model(1), "two": two_task_model(2)}
    images, labels, dataset = labelled()
    logits, got_labels = predictions.collect_predictions(models, dataset)
    assert sorted(logits) == ["one", "two"]
    for name, model in models.items():
        expected = model(images)
        for task in ("a", "b"):
            np.testing.assert_allclose(
                logits[name][task], expected[task], rtol=1e-6, atol=1e-6
            )
    for task in ("a", "b"):
        np.testing.assert_array_equal(got_labels[task], labels[task])
    assert logits["one"]["a"].shape == (10, 3)


def test_task_accuracies_are_argmax_hits():
    logits = {
        "a": np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]),
        "b": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    }
    labels = {"a": np.array([1, 1, 1, 0]), "b": np.array([0, 1]), "c": [0]}
    assert predictions.task_accuracies(logits, labels) == {"a": 0.75, "b": 0.5}


def test_task_accuracies_name_the_missing_labels():
    with pytest.raises(ValueError, match=r"No labels for tasks \['b'\]"):
        predictions.task_accuracies(
            {"a": np.eye(2), "b": np.eye(2)}, {"a": np.array([0, 1])}
        )
