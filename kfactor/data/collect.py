"""Running functions over a labelled dataset, stacked into NumPy arrays.

One loop serves every reader of a dataset: predictions of models
(`kfactor.lab.evaluation.predictions`), codes of representations
(`kfactor.lab.evaluation.codes`) and the tuning objective's task codes
(`kfactor.lab.tuning`).
"""

import numpy as np
import tensorflow as tf


def collect_outputs(functions, dataset, max_examples=None):
    """Runs every function over `dataset`'s images; stacks outputs, labels.

    The functions run together in one `tf.function` per batch, traced
    without autograph (as Keras traces its own steps): they must build graph
    ops, with no Python `if` or `for` on a tensor. Their
    outputs (a tensor, or a dict of them) and the labels are concatenated
    over the batches into NumPy arrays of the same structure.

    Args:
        functions: dict name -> callable images -> tensor or nest of them.
        dataset: batched `(images, labels)`; labels a tensor or a dict.
        max_examples: stop after this many examples (None: all).

    Returns:
        `(outputs, labels)`: `outputs[name]` and `labels` with every array
        of length `min(N, max_examples)`.

    Example:

    >>> ds = tf.data.Dataset.from_tensor_slices(
    ...     (np.ones((5, 2), "float32"), {"y": np.arange(5)})).batch(2)
    >>> outputs, labels = collect_outputs({"double": lambda x: 2 * x}, ds, 3)
    >>> outputs["double"].shape, labels["y"].tolist()
    ((3, 2), [0, 1, 2])
    """
    run_all = tf.function(
        lambda images: {name: run(images) for name, run in functions.items()},
        reduce_retracing=True,
        autograph=False,  # graph ops only: tracing skips the AST rewrite
    )
    batches, seen = [], 0
    for images, labels in dataset:
        outputs = run_all(images)
        batches.append(tf.nest.map_structure(np.asarray, (outputs, labels)))
        seen += int(tf.shape(images)[0])
        if max_examples is not None and seen >= max_examples:
            break
    if not batches:
        raise ValueError(
            "Expected a dataset of at least one batch. Received: an empty "
            "dataset. Fix: check the dataset's size and batching."
        )
    limit = slice(0, max_examples)
    return tf.nest.map_structure(
        lambda *parts: np.concatenate(parts)[limit], *batches
    )


def _check_label_keys(label_spec, factor_names):
    """Raises before any batch is read unless every factor has labels."""
    keys = label_spec if isinstance(label_spec, dict) else {}
    missing = [f for f in factor_names if f not in keys]
    if missing:
        raise ValueError(
            f"The dataset has no labels for factors {missing}. Received "
            f"label keys: {sorted(keys)}"
        )


def collect_codes(readers, dataset, factor_names, max_examples=None):
    """Runs every code reader over `dataset`; returns codes and factors.

    Args:
        readers: dict name -> callable images -> `[batch, dim]`.
        dataset: batched `(images, {factor: labels})`.
        factor_names: label keys, in the column order of the result.
        max_examples: stop after this many examples (None: all).

    Returns:
        `(codes, factors)`: `codes[name]` float32 `(N, dim)`; `factors` int
        `(N, len(factor_names))`.
    """
    _check_label_keys(dataset.element_spec[1], factor_names)
    codes, labels = collect_outputs(readers, dataset, max_examples)
    factors = np.stack([labels[f] for f in factor_names], 1)
    return {name: v.astype("float32") for name, v in codes.items()}, factors


def concatenate_blocks(codes, names):
    """The concatenation `[z_1, ..., z_k]` of code blocks, `(N, sum dims)`."""
    return np.concatenate([codes[name] for name in names], axis=1)


__all__ = [
    "collect_codes",
    "collect_outputs",
    "concatenate_blocks",
]
