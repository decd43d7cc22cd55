"""Accuracy of any `images -> {task: logits}` model on a labelled dataset."""

import numpy as np
import tensorflow as tf


def collect_predictions(models, dataset):
    """Runs every model over `dataset` once; returns logits and labels.

    Args:
        models: dict name -> Keras model images -> `{task: logits}`.
        dataset: batched `(images, {task: labels})`.

    Returns:
        `(logits, labels)`: `logits[name][task]` and `labels[task]` are NumPy
        arrays over the whole dataset.
    """
    predict = {
        name: tf.function(
            lambda images, model=model: model(images, training=False),
            reduce_retracing=True,
        )
        for name, model in models.items()
    }
    logits = {name: {} for name in models}
    labels = {}
    for images, batch_labels in dataset:
        for task, values in batch_labels.items():
            labels.setdefault(task, []).append(np.asarray(values))
        for name, run in predict.items():
            for task, values in run(images).items():
                logits[name].setdefault(task, []).append(np.asarray(values))
    join = lambda parts: {k: np.concatenate(v) for k, v in parts.items()}  # noqa: E731
    return {name: join(v) for name, v in logits.items()}, join(labels)


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


__all__ = [
    "collect_predictions",
    "task_accuracies",
]
