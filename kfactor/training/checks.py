"""The `Factorizer`'s checks of its arguments, its data and its losses.

Construction checks (`check_teacher`, `image_shape`, `check_tasks`,
`check_value_range`, `resolve_losses`) raise at once; the in-step checks
(`batch_assertions`, `loss_assertions`) are `tf.debugging` assert ops that
the step runs before its update (`kfactor.training.step`), and the `fit`
helpers (`fit_arguments`, `BatchCounter`, `check_some_batch_trained`) tell
an empty dataset.

What stays `tf` and why: the in-step asserts are `tf.debugging` ops
ordered by `tf.control_dependencies`; `keras.ops` has none.
"""

import inspect
import warnings

from kfactor import validation
from kfactor.factors import manifest as manifest_lib
from kfactor.objective import imb as imb_lib
from kfactor.objective import losses as losses_lib

import keras
import tensorflow as tf


def check_teacher(teacher):
    """Raises unless `teacher` is a `keras.Model`."""
    if not isinstance(teacher, keras.Model):
        raise TypeError(
            "Expected teacher to be a keras.Model mapping images to "
            f"{{task: logits}}. Received: {type(teacher).__name__}"
        )


def image_shape(teacher, common):
    """The fixed image shape of the teacher's (or else common's) input."""
    for model in (teacher, common):
        shape = getattr(model, "input_shape", None)
        if (
            isinstance(shape, tuple)
            and len(shape) > 1
            and None not in shape[1:]
        ):
            return tuple(shape[1:])
    raise ValueError(
        "Cannot tell the image shape: neither the teacher nor the common "
        "encoder has a fixed input shape. Fix: build them with "
        "keras.Input(shape=(height, width, channels))."
    )


def check_tasks(tasks, teacher_classes):
    """Raises unless `tasks` is a non-empty dict of teacher outputs."""
    if not isinstance(tasks, dict) or not tasks:
        raise ValueError(
            "Expected tasks as a non-empty dict task name -> Keras model (or "
            f"TaskFactor). Received: tasks={tasks!r}"
        )
    unknown = sorted(set(tasks) - set(teacher_classes))
    if unknown:
        raise ValueError(
            f"tasks {unknown} are not outputs of the teacher. The teacher "
            f"outputs: {sorted(teacher_classes)}. Fix: name each task like "
            "the teacher's output it factorizes."
        )


def check_value_range(value_range):
    """`(low, high)` as floats, or `None`; raises on a malformed range."""
    if value_range is None:
        return None
    low, high = manifest_lib.input_spec((1,), value_range)["value_range"]
    return (low, high)


def resolve_losses(losses, objective_options, factorizer):
    """The factorizer's `FactorLoss` list, checked against its factors.

    `losses=None` builds `imb_objective(**objective_options)`; a misspelt
    option is a `TypeError` naming the nearest valid one.
    """
    if losses is None:
        validation.check_options(
            objective_options,
            inspect.signature(imb_lib.imb_objective).parameters,
            "objective option (kfactor.imb_objective argument)",
        )
        losses = imb_lib.imb_objective(**objective_options)
    elif objective_options:
        raise ValueError(
            "Pass either losses=[...] or objective options, not both. "
            f"Received options: {sorted(objective_options)}"
        )
    names = [loss.name for loss in losses]
    if len(set(names)) != len(names):
        raise ValueError(
            f"Expected one loss per term name. Received names: {names}"
        )
    for loss in losses:
        if not isinstance(loss, losses_lib.FactorLoss):
            raise TypeError(
                "Expected kfactor.objective.losses.FactorLoss objects. "
                f"Received: {loss!r}"
            )
        loss.validate(factorizer)
    return list(losses)


def batch_assertions(images, labels, value_range, num_classes):
    """Assert ops: finite images in `value_range`, labels in range."""
    checks = [validation.assert_finite_images(images)]
    if value_range is not None:
        checks.append(validation.assert_images_in_range(images, value_range))
    for task, classes in num_classes.items():
        checks.append(
            validation.assert_labels_in_range(labels[task], classes, task)
        )
    return [c for c in checks if c is not None]


def loss_assertions(total, terms, after):
    """Assert ops: every loss term and the total are finite, after `after`."""
    with tf.control_dependencies(after):
        checks = validation.assert_finite_terms(
            {**terms, "loss (total)": total}
        )
    return [c for c in checks if c is not None]


class NonFiniteValidationWarning(UserWarning):
    """Validation (or evaluate) batches were skipped for a NaN/Inf loss."""


def warn_skipped_batches(counts, where):
    """Warns when `counts` (per epoch) of test batches were skipped.

    Args:
        counts: the `nonfinite_batches` of each epoch (or one evaluate).
        where: "validation" or "evaluate", for the message.
    """
    counts = [int(c) for c in counts or ()]
    if not any(counts):
        return
    warnings.warn(
        f"Skipped {sum(counts)} {where} batch(es) whose loss was NaN or Inf "
        f"(per epoch: {counts}); the {where} metrics are means over the "
        "finite batches, and the count is logged as "
        f"{'val_' if where == 'validation' else ''}nonfinite_batches. Fix: "
        "check those batches' images and labels, or the model's numerics "
        "(training stops at a non-finite training loss).",
        NonFiniteValidationWarning,
        stacklevel=3,
    )


def fit_arguments(x, y, args, kwargs):
    """The arguments of a `keras.Model.fit(x, y, *args, **kwargs)` call, by
    name (defaults filled in)."""
    bound = inspect.signature(keras.Model.fit).bind(None, x, y, *args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    del arguments["self"]
    return arguments


class BatchCounter(keras.callbacks.Callback):
    """Counts the training batches a `fit` ran.

    The optimizer's step count is no such count: a `LossScaleOptimizer`
    skips the update (and the count) of a step whose scaled gradients
    overflow, as mixed_float16 training's first steps do.
    """

    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def with_batch_counter(arguments):
    """`(fit arguments with a BatchCounter among the callbacks, counter)`."""
    counter = BatchCounter()
    callbacks = arguments["callbacks"]
    if isinstance(callbacks, keras.callbacks.CallbackList):
        # Keras adds no History or progress bar to a CallbackList: nor here.
        callbacks = keras.callbacks.CallbackList([callbacks, counter])
    else:
        callbacks = [*(callbacks or []), counter]
    return {**arguments, "callbacks": callbacks}, counter


def check_some_batch_trained(batches, arguments):
    """Raises if a `fit` with `arguments` (`fit_arguments`) asked for epochs
    but ran `batches == 0`: its data yielded no batch."""
    if batches or arguments["epochs"] <= arguments["initial_epoch"]:
        return
    raise ValueError(
        "Expected the training data to yield at least one batch. "
        "Received: none (an empty dataset, or one already "
        "exhausted). Fix: check the data source, or repeat() it and "
        "pass steps_per_epoch."
    )


__all__ = [
    "BatchCounter",
    "NonFiniteValidationWarning",
    "batch_assertions",
    "check_some_batch_trained",
    "check_tasks",
    "check_teacher",
    "check_value_range",
    "fit_arguments",
    "image_shape",
    "loss_assertions",
    "resolve_losses",
    "warn_skipped_batches",
    "with_batch_counter",
]
