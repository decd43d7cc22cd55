"""Training a multi-task teacher with the plain Keras `fit` API."""

import keras


def compile_teacher(teacher, optimizer=None, jit_compile=False):
    """Compiles `teacher` with a sparse CE and an accuracy per task.

    The loss is the sum of per-task cross-entropies (the reference's
    multi-task head). `optimizer` defaults to Adam(1e-3).

    Example:

    >>> teacher = multitask_teacher({"shape": 3},
    ...     encoder=simple_conv64(widths=NARROW_WIDTHS))
    >>> compile_teacher(teacher) is teacher
    True
    """
    tasks = list(teacher.output)
    teacher.trainable = True
    teacher.compile(
        optimizer=optimizer or keras.optimizers.Adam(1e-3),
        loss={
            t: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            for t in tasks
        },
        metrics={
            t: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            for t in tasks
        },
        jit_compile=jit_compile,
    )
    return teacher
