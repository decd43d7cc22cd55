"""Accuracy of any `images -> {task: logits}` model on a labelled dataset."""

from kfactor.data.collect import collect_outputs
from kfactor.lab import disentanglement as metrics

import numpy as np


def collect_predictions(models, dataset):
    """Runs every model over `dataset` once; returns logits and labels.

    Args:
        models: dict name -> Keras model images -> `{task: logits}`.
        dataset: batched `(images, {task: labels})`.

    Returns:
        `(logits, labels)`: `logits[name][task]` and `labels[task]` are NumPy
        arrays over the whole dataset.
    """
    return collect_outputs(
        {name: inference(model) for name, model in models.items()}, dataset
    )


def inference(model):
    """`images -> model(images, training=False)`."""

    def predict(images):
        return model(images, training=False)

    return predict


def task_accuracies(logits, labels):
    """`{task: accuracy}` for every task of `logits` (NumPy arrays).

    Example:

    >>> task_accuracies({"a": np.eye(2)}, {"a": np.array([0, 0])})
    {'a': 0.5}
    """
    missing = sorted(set(logits) - set(labels))
    if missing:
        raise ValueError(
            f"No labels for tasks {missing}. Received label keys: "
            f"{sorted(labels)}"
        )
    return {
        task: float(np.mean(np.argmax(values, -1) == labels[task]))
        for task, values in logits.items()
    }


def evaluate_predictions(models, test_ds):
    """`(accuracies, symmetry-aware orientation accuracies)` of `models`.

    The first is `{model name: {task: test accuracy}}`; the second
    `{model: {"raw", "symmetry_aware"}}` for models that predict
    `orientation` of a dataset labelled with `shape` (see
    `kfactor.lab.disentanglement.symmetry`).
    """
    logits, labels = collect_predictions(models, test_ds)
    accuracies = {
        name: task_accuracies(v, labels) for name, v in logits.items()
    }
    orientation = {}
    for name, values in logits.items():
        if "orientation" not in values or "shape" not in labels:
            continue
        orientation[name] = {
            "raw": accuracies[name]["orientation"],
            "symmetry_aware": metrics.symmetric_orientation_accuracy(
                np.argmax(values["orientation"], -1),
                labels["orientation"],
                labels["shape"],
            ),
        }
    return accuracies, orientation


def evaluate_accuracies(models, test_ds):
    """`{model name: {task: test accuracy}}`."""
    return evaluate_predictions(models, test_ds)[0]


__all__ = [
    "collect_predictions",
    "evaluate_accuracies",
    "evaluate_predictions",
    "inference",
    "task_accuracies",
]
