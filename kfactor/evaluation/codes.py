"""Reading representations: teacher latent, common code and task codes.

The evaluation suite scores representations, not models: a *code reader*
is a dict `name -> callable(images) -> [batch, dim]`. `factorizer_readers`
builds one for an in-memory `Factorizer`, `saved_factor_readers` for saved
factors (task codes are the posterior means, what the factor networks use
at inference).
"""

import numpy as np
import tensorflow as tf

TEACHER = "teacher"
COMMON = "common"


def factorizer_readers(factorizer):
    """Code readers of a `Factorizer`: teacher, common and every task.

    The teacher's code is the feature InfoMax reads (its latent, for a
    multi-task classifier).

    Example:

    >>> readers = factorizer_readers(factorizer)       # doctest: +SKIP
    >>> sorted(readers)                                # doctest: +SKIP
    ['common', 'scale', 'shape', 'teacher']
    """

    def teacher_code(images):
        return factorizer.teacher_reader(images)[1][-1]

    def common_code(images):
        return factorizer.common(images, training=False)

    def task_code(factor):
        return lambda images: factor.encode(images, training=False).mean

    readers = {TEACHER: teacher_code, COMMON: common_code}
    for task, factor in factorizer.task_factors.items():
        readers[task] = task_code(factor)
    return readers


def saved_factor_readers(factors, teacher, tasks=None):
    """Code readers of saved factors and the teacher they were factorized from.

    The same codes as `factorizer_readers` of the in-memory factorization:
    the teacher's InfoMax feature (found as `Factorizer` does by default,
    `teacher_features="auto"`), `z_common` and each task's code mean.

    Args:
        factors: from `kfactor.load_factors` (dict or list of
            `SavedFactor`), the common factor and task factors.
        teacher: the Keras teacher images -> `{task: logits}`.
        tasks: the task factors to read (all if None).

    Returns:
        dict name -> callable images -> `[batch, dim]`.

    Example:

    >>> factors = kfactor.load_factors("runs/demo/factors")  # doctest: +SKIP
    >>> readers = saved_factor_readers(factors, teacher)    # doctest: +SKIP
    >>> sorted(readers)                                     # doctest: +SKIP
    ['common', 'orientation', 'pos_x', 'pos_y', 'scale', 'shape', 'teacher']
    """
    from kfactor.factors.assembly import resolve
    from kfactor.layers.features import TeacherReader

    common, task_factors, _ = resolve(factors, tasks)
    reader = TeacherReader(teacher)

    def teacher_code(images):
        return reader(images)[1][-1]

    readers = {TEACHER: teacher_code, COMMON: common}
    for task, factor in task_factors.items():
        readers[task] = factor.encode
    return readers


def collect_codes(readers, dataset, factor_names, max_examples=None):
    """Runs every reader over `dataset`; returns codes and factor labels.

    Args:
        readers: dict name -> callable images -> `[batch, dim]`.
        dataset: batched `(images, {factor: labels})`.
        factor_names: label keys, in the column order of the result.
        max_examples: stop after this many examples (None: all).

    Returns:
        `(codes, factors)`: `codes[name]` float32 `(N, dim)`; `factors` int
        `(N, len(factor_names))`.
    """
    read_all = tf.function(
        lambda images: {name: read(images) for name, read in readers.items()},
        reduce_retracing=True,
    )
    codes = {name: [] for name in readers}
    factors = []
    seen = 0
    for images, labels in dataset:
        missing = [f for f in factor_names if f not in labels]
        if missing:
            raise ValueError(
                f"The dataset has no labels for factors {missing}. Received "
                f"label keys: {sorted(labels)}"
            )
        factors.append(
            np.stack([np.asarray(labels[f]) for f in factor_names], 1)
        )
        for name, values in read_all(images).items():
            codes[name].append(np.asarray(values, dtype="float32"))
        seen += len(factors[-1])
        if max_examples is not None and seen >= max_examples:
            break
    if not factors:
        raise ValueError("The dataset is empty: no codes to collect.")
    limit = slice(0, max_examples)
    codes = {name: np.concatenate(v)[limit] for name, v in codes.items()}
    return codes, np.concatenate(factors)[limit]


def concatenate_blocks(codes, names):
    """The concatenation `[z_1, ..., z_k]` of code blocks, `(N, sum dims)`."""
    return np.concatenate([codes[name] for name in names], axis=1)


__all__ = [
    "COMMON",
    "TEACHER",
    "collect_codes",
    "concatenate_blocks",
    "factorizer_readers",
    "saved_factor_readers",
]
