"""Input checks shared by kfactor's public entry points.

Every check raises an error that names what is wrong and how to fix it:

- `ValueError`: a wrong value, shape or dtype (images, labels, options);
- `TypeError`: a wrong Python type, or an unknown keyword option;
- `NonFiniteError` (a `ValueError`): NaN or Inf in images, a loss term or
  weights;
- `kfactor.factors.manifest.FactorFormatError` (a `ValueError`): an artefact
that
  kfactor cannot use.

Checks on shapes and dtypes run once, in Python (on a dataset's
`element_spec`, or while a step is traced). Checks on values run on every
batch: eagerly they raise at once; inside a `tf.function` they are
`tf.debugging.Assert` ops, whose `InvalidArgumentError` `translate_error`
turns back into the error above (as `Factorizer.fit` does). XLA drops
`Assert` ops, so the Factorizer and the lab's baselines compile only their
forward pass and gradients with XLA (`jit_compile`) and run these checks
outside it.

Images may lie up to `VALUE_RANGE_MARGIN` of the range's width outside the
declared value range (noise, augmentation); beyond that they are refused:
this catches 0-255 images given to factors that expect [0, 1].
"""

import difflib
import re

import numpy as np
import tensorflow as tf

#: How far, as a fraction of `high - low`, images may leave `value_range`.
VALUE_RANGE_MARGIN = 0.5
#: The tag that marks kfactor's in-graph assertion messages.
TAG = "kfactor check:"

# message -> error class, for `translate_error`.
_GRAPH_MESSAGES = {}


class NonFiniteError(ValueError):
    """NaN or Inf where kfactor needs finite numbers."""


# === Options ===


def check_options(options, valid, what):
    """Raises `TypeError` for names in `options` not in `valid`.

    The message names the nearest valid option (`difflib`).

    Example:

    >>> check_options({"betta": 0.1}, ["beta", "kd"], "objective option")
    Traceback (most recent call last):
    ...
    TypeError: Unknown objective option 'betta'. Did you mean 'beta'? ...
    """
    for name in options:
        if name in valid:
            continue
        close = difflib.get_close_matches(name, list(valid), n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise TypeError(
            f"Unknown {what} {name!r}. {hint}Valid options: "
            f"{sorted(valid)}. Fix: correct the keyword's spelling."
        )


# === Static checks: shapes and dtypes ===


def check_image_signature(shape, dtype, image_shape, where="images"):
    """Raises `ValueError` unless `shape`/`dtype` are batched float images.

    Args:
        shape: the images' shape (a `TensorShape`, tuple or list); the
            batch axis may be unknown, and so may any other axis.
        dtype: their dtype (any `tf.dtypes.as_dtype` argument).
        image_shape: the expected `(height, width, channels)`.
        where: what the images are given to, for the message.
    """
    shape = tf.TensorShape(shape)
    dtype = tf.dtypes.as_dtype(dtype)
    expected = [int(d) for d in image_shape]
    if shape.rank is None:
        return
    if shape.rank == len(expected):
        raise ValueError(
            f"Expected {where} shaped [batch, "
            f"{', '.join(map(str, expected))}]. Received: shape "
            f"{shape.as_list()}, one axis short (unbatched, or without the "
            "channel axis). Fix: batch the dataset (dataset.batch(n)) or "
            "add the missing axis (images[None] or images[..., None])."
        )
    if shape.rank != len(expected) + 1 or not all(
        got is None or got == want
        for got, want in zip(shape.as_list()[1:], expected)
    ):
        raise ValueError(
            f"Expected {where} shaped [batch, "
            f"{', '.join(map(str, expected))}] (height, width, channels). "
            f"Received: shape {shape.as_list()}. Fix: resize the images to "
            f"{expected[:-1]} with {expected[-1]} channel(s), channels last."
        )
    if not dtype.is_floating:
        raise ValueError(
            f"Expected float {where} (float32). Received: dtype "
            f"{dtype.name}. Fix: cast them to float32 and scale them to the "
            "value range, e.g. tf.cast(images, 'float32') / 255 for 8-bit "
            "pixels (array_dataset(..., pixel_scale=1/255) does this)."
        )


def check_label_signature(labels, task_names, where="labels"):
    """Raises unless `labels` maps every task to integer labels.

    Args:
        labels: dict task -> tensor, `tf.TensorSpec` or array.
        task_names: the tasks that need labels.
    """
    if not isinstance(labels, dict):
        raise ValueError(
            "Expected labels as a dict {task: integer labels} with tasks "
            f"{list(task_names)}. Received: {type(labels).__name__}. Fix: "
            "yield (images, {task: labels})."
        )
    missing = [t for t in task_names if t not in labels]
    if missing:
        raise ValueError(
            f"Labels are missing tasks {missing}. Received label keys: "
            f"{sorted(labels)}. Fix: yield (images, {{task: labels}}) with "
            f"every task of {list(task_names)}."
        )
    for task in task_names:
        dtype = tf.dtypes.as_dtype(labels[task].dtype)
        if not dtype.is_integer:
            raise ValueError(
                f"Expected integer class indices in {where}[{task!r}]. "
                f"Received: dtype {dtype.name}. Fix: cast whole-number "
                "labels to int32 (float labels are never rounded for you)."
            )


def check_element_spec(dataset, image_shape, task_names):
    """Checks a `(images, {task: labels})` dataset before training on it.

    Raises:
        ValueError: the dataset is known to be empty, or its images or
            labels have the wrong structure, shape or dtype.
    """
    if int(dataset.cardinality()) == 0:
        raise ValueError(
            "Expected a dataset with at least one batch. Received: an empty "
            "dataset (cardinality 0). Fix: check the data source and any "
            "filter/take/batch(drop_remainder=True) that removes all of it."
        )
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            "Expected a dataset of (images, {task: labels}) tuples. "
            f"Received: element_spec={spec}. Fix: map it to that structure."
        )
    images = spec[0]
    check_image_signature(images.shape, images.dtype, image_shape)
    check_label_signature(spec[1], task_names)


def check_fit_inputs(x, y, image_shape, task_names):
    """The checks of `fit`'s data that need no batch: structure and dtypes.

    `x` may be a dataset (its `element_spec` and known emptiness) or an
    array of images with `y` a dict of labels; other inputs (generators,
    `keras.utils.PyDataset`) are checked when the step is traced.
    """
    if isinstance(x, tf.data.Dataset):
        check_element_spec(x, image_shape, task_names)
    elif isinstance(x, (np.ndarray, tf.Tensor)):
        check_image_signature(x.shape, x.dtype, image_shape)
        if len(x) == 0:
            raise ValueError(
                "Expected at least one image. Received: 0 images. Fix: check "
                "the data source."
            )
        check_label_signature(y, task_names)


# === Eager checks: arrays ===


def check_label_values(values, num_classes=None, name="labels"):
    """Integer labels from an array, refusing fractions and bad indices.

    Whole-number float labels (1.0) are accepted; 0.5 is not.

    Returns:
        The labels as an int32 array.
    """
    values = np.asarray(values)
    if not (
        np.issubdtype(values.dtype, np.integer)
        or np.issubdtype(values.dtype, np.floating)
    ):
        raise ValueError(
            f"Expected integer class indices in {name}. Received: dtype "
            f"{values.dtype}. Fix: encode the classes as 0..num_classes-1."
        )
    if np.issubdtype(values.dtype, np.floating) and (
        not np.all(np.isfinite(values)) or np.any(values != np.round(values))
    ):
        bad = values[~np.isfinite(values) | (values != np.round(values))]
        raise ValueError(
            f"Expected integer class indices in {name}. Received: float "
            f"labels such as {bad[:3].tolist()}, which are not whole "
            "numbers. Fix: pass int labels 0..num_classes-1 (never "
            "truncated for you)."
        )
    if values.size and values.min() < 0:
        raise ValueError(
            f"Expected class indices >= 0 in {name}. Received: min "
            f"{values.min()}. Fix: encode the classes as 0..num_classes-1."
        )
    if num_classes is not None and values.size and values.max() >= num_classes:
        raise ValueError(
            f"Expected class indices in [0, {num_classes}) in {name}. "
            f"Received: max {values.max()}. Fix: encode the classes as "
            f"0..{num_classes - 1}, or raise num_classes."
        )
    return values.astype(np.int32)


def check_image_values(images, value_range, where="images", scale=1.0):
    """Raises unless the array `images * scale` is finite and in range.

    Args:
        images: a NumPy array.
        value_range: `(low, high)`, or None to check finiteness only.
        where: what the images are given to, for the message.
        scale: the factor the images will be multiplied by.
    """
    if images.size == 0:
        return
    low, high = float(images.min()) * scale, float(images.max()) * scale
    if not (np.isfinite(low) and np.isfinite(high)):
        raise NonFiniteError(
            f"Expected finite {where}. Received: NaN or Inf values. Fix: "
            "drop or repair the broken images."
        )
    if value_range is not None and not in_range(low, high, value_range):
        raise ValueError(range_message(where, value_range, low, high))


def in_range(low, high, value_range):
    """Whether `[low, high]` is within `value_range` and its margin."""
    start, stop = (float(v) for v in value_range)
    margin = VALUE_RANGE_MARGIN * (stop - start)
    return start - margin <= low and high <= stop + margin


def range_message(where, value_range, low=None, high=None):
    start, stop = (float(v) for v in value_range)
    received = (
        "values outside it (min, max follow)"
        if low is None
        else f"values in [{low:g}, {high:g}]"
    )
    return (
        f"Expected {where} in the value range [{start:g}, {stop:g}]. "
        f"Received: {received}. Fix: rescale the images (8-bit pixels: "
        "divide by 255, or array_dataset(..., pixel_scale=1/255)), or "
        "declare their range (Factorizer(value_range=...), "
        "save_factors(value_range=...))."
    )


def check_finite_variables(variables, what):
    """Raises `NonFiniteError` naming the first variable with NaN or Inf."""
    for variable in variables:
        value = np.asarray(variable)
        if not np.all(np.isfinite(value)):
            name = getattr(variable, "path", None) or variable.name
            raise NonFiniteError(
                f"Expected finite weights in {what}. Received: NaN or Inf in "
                f"{name}. Fix: the training diverged; retrain (lower the "
                "learning rate, check the inputs); nothing was written."
            )


# === Value checks on every batch (eager or in-graph) ===


def assert_that(condition, message, error=ValueError, data=()):
    """Raises `error(message)` eagerly, or adds a `tf.debugging.Assert`.

    Args:
        condition: a scalar boolean tensor.
        message: the full message, naming the fix.
        error: the error class raised eagerly and by `translate_error`.
        data: tensors appended to the message.
    """
    if tf.executing_eagerly():
        if not bool(condition):
            received = " ".join(str(np.asarray(d)) for d in data)
            raise error(f"{message} {received}".strip())
        return None
    _GRAPH_MESSAGES[message] = error
    return tf.debugging.Assert(condition, [f"{TAG} {message}", *data])


def assert_finite_images(images, where="images"):
    """Asserts `images` hold no NaN or Inf."""
    return assert_that(
        tf.reduce_all(tf.math.is_finite(images)),
        f"Expected finite {where}. Received: NaN or Inf values. Fix: drop "
        "or repair the broken images.",
        NonFiniteError,
    )


def assert_images_in_range(images, value_range, where="images"):
    """Asserts `images` lie within `value_range` (and its margin)."""
    start, stop = (float(v) for v in value_range)
    margin = VALUE_RANGE_MARGIN * (stop - start)
    low, high = tf.reduce_min(images), tf.reduce_max(images)
    return assert_that(
        tf.logical_and(low >= start - margin, high <= stop + margin),
        range_message(where, value_range),
        data=("min/max:", low, high),
    )


def assert_labels_in_range(labels, num_classes, task):
    """Asserts every label of `task` lies in `[0, num_classes)`."""
    return assert_that(
        tf.logical_and(
            tf.reduce_all(labels >= 0), tf.reduce_all(labels < num_classes)
        ),
        f"Expected labels of task {task!r} in [0, {num_classes}). Received "
        f"labels outside it. Fix: encode the classes as "
        f"0..{num_classes - 1} (the teacher's {task!r} output has "
        f"{num_classes} classes).",
        data=("min/max:", tf.reduce_min(labels), tf.reduce_max(labels)),
    )


def assert_finite_terms(terms):
    """Asserts each loss term is finite; the message names the term."""
    return [
        assert_that(
            tf.math.is_finite(value),
            f"Expected a finite loss term {name!r}. Received: NaN or Inf; "
            "training "
            "stopped before applying this step's update. Fix: lower the "
            "learning rate, check the images and labels, or pass "
            "Factorizer(stop_on_nonfinite_loss=False) to continue anyway.",
            NonFiniteError,
        )
        for name, value in terms.items()
    ]


def translate_error(err):
    """The kfactor error for an in-graph assertion failure, or None."""
    text = getattr(err, "message", str(err))
    # The Assert op prints its strings C-escaped.
    text = text.replace("\\'", "'").replace('\\"', '"')
    if TAG not in text:
        return None
    for message, error in _GRAPH_MESSAGES.items():
        if message in text:
            tail = text.split(message, 1)[1].split("\n", 1)[0]
            received = re.sub(r"[\[\]]", " ", tail).split()
            return error(" ".join([message, *received]))
    return None


__all__ = [
    "TAG",
    "VALUE_RANGE_MARGIN",
    "NonFiniteError",
    "assert_finite_images",
    "assert_finite_terms",
    "assert_images_in_range",
    "assert_labels_in_range",
    "assert_that",
    "check_element_spec",
    "check_finite_variables",
    "check_fit_inputs",
    "check_image_signature",
    "check_image_values",
    "check_label_signature",
    "check_label_values",
    "check_options",
    "in_range",
    "range_message",
    "translate_error",
]
