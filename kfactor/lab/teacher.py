"""Training a multi-task teacher with the plain Keras `fit` API.

Knowledge factorization needs a teacher that knows its tasks. The choices
here are the standard ones, each measured on the demo's dSprites teacher
(narrow SimpleConv64, 2 CPU cores): batch normalization in the encoder
(`simple_conv64(normalization="batch")`; without it the teacher sat on the
`shape` plateau for more than 5,000 steps), per-task loss weights
`1 / log(K)` (every task's CE starts at 1 instead of `log K`, so the
3-class `shape` is not drowned by the 40- and 32-class tasks), and Adam
with a linear warm-up and a cosine decay (`warmup_cosine_adam`).
"""

import math

from kfactor.training.optimizers import FusedAdam

import keras

#: Share of the steps spent warming the learning rate up from 0.
WARMUP_FRACTION = 0.05


def balanced_loss_weights(num_classes):
    """`{task: 1 / log(K)}`: every task's chance-level CE weighs 1.

    Example:

    >>> balanced_loss_weights({"a": 2})
    {'a': 1.4426950408889634}
    """
    for task, classes in num_classes.items():
        if not isinstance(classes, int) or classes < 2:
            raise ValueError(
                f"Expected at least 2 classes per task. Received: "
                f"{task}={classes!r}"
            )
    return {t: 1.0 / math.log(k) for t, k in num_classes.items()}


def warmup_cosine_schedule(learning_rate, total_steps):
    """A rate that rises linearly to `learning_rate`, then decays to 0.

    Args:
        learning_rate: the peak rate.
        total_steps: the number of training steps (`epochs *
            steps_per_epoch`); the first `WARMUP_FRACTION` of them warm up.

    Example:

    >>> schedule = warmup_cosine_schedule(3e-3, total_steps=1000)
    >>> round(float(schedule(50)), 6)
    0.003
    """
    if total_steps < 1:
        raise ValueError(
            f"Expected total_steps >= 1. Received: total_steps={total_steps}"
        )
    if learning_rate <= 0:
        raise ValueError(
            f"Expected learning_rate > 0. Received: {learning_rate}"
        )
    warmup = max(1, int(WARMUP_FRACTION * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total_steps - warmup),
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )


def warmup_cosine_adam(learning_rate, total_steps):
    """`FusedAdam` on `warmup_cosine_schedule(learning_rate, total_steps)`.

    Example:

    >>> optimizer = warmup_cosine_adam(3e-3, total_steps=1000)
    """
    return FusedAdam(warmup_cosine_schedule(learning_rate, total_steps))


def compile_teacher(
    teacher, optimizer=None, loss_weights="balanced", jit_compile=False
):
    """Compiles `teacher` with a sparse CE and an accuracy per task.

    Args:
        teacher: a Keras model images -> `{task: logits}`.
        optimizer: defaults to `FusedAdam(1e-3)`; see `warmup_cosine_adam`.
        loss_weights: `"balanced"` (`balanced_loss_weights`), `None` (the
            reference's unweighted sum) or a dict task -> weight.
        jit_compile: passed to `compile`.

    Example:

    >>> teacher = multitask_teacher({"shape": 3},
    ...     encoder=simple_conv64(widths=NARROW_WIDTHS))
    >>> compile_teacher(teacher) is teacher
    True
    """
    tasks = list(teacher.output)
    if isinstance(loss_weights, str):
        if loss_weights != "balanced":
            raise ValueError(
                "Expected loss_weights 'balanced', None or a dict. "
                f"Received: loss_weights={loss_weights!r}"
            )
        loss_weights = balanced_loss_weights(
            {t: int(teacher.output[t].shape[-1]) for t in tasks}
        )
    teacher.trainable = True
    teacher.compile(
        optimizer=optimizer or FusedAdam(1e-3),
        loss={
            t: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            for t in tasks
        },
        loss_weights=loss_weights,
        metrics={
            t: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            for t in tasks
        },
        jit_compile=jit_compile,
    )
    return teacher


__all__ = [
    "WARMUP_FRACTION",
    "balanced_loss_weights",
    "compile_teacher",
    "warmup_cosine_adam",
    "warmup_cosine_schedule",
]
