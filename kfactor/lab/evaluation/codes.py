"""Reading representations: teacher latent, common code and task codes.

The evaluation suite scores representations, not models: a *code reader*
is a dict `name -> callable(images) -> [batch, dim]`. `factorizer_readers`
builds one for an in-memory `Factorizer`, `saved_factor_readers` for saved
factors (task codes are the posterior means, what the factor networks use
at inference). `collect_codes` (from `kfactor.data.collect`) runs readers
over a dataset.
"""

from kfactor.data.collect import collect_codes
from kfactor.data.collect import concatenate_blocks
from kfactor.factors.assembly import resolve
from kfactor.layers.features import TeacherReader

import keras

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


def sampled_task_readers(factorizer, seed=0):
    """Readers of *sampled* task codes `mean + sigma * eps`, variational
    factors only, keyed `"<task>"`.

    The bottleneck bounds the information of a sample; probes and
    assembled networks read the mean. Leakage measured on both tells
    whether other-task information hides in the mean under the noise. The
    encoders run in inference mode (no batch statistics), and the noise is
    seeded.
    """
    generator = keras.random.SeedGenerator(seed)

    def sampled(factor):
        def read(images):
            code = factor.encode(images, training=False)
            noise = keras.random.normal(
                keras.ops.shape(code.mean),
                dtype=code.mean.dtype,
                seed=generator,
            )
            return code.mean + noise * keras.ops.exp(0.5 * code.log_var)

        return read

    return {
        task: sampled(factor)
        for task, factor in factorizer.task_factors.items()
        if factor.variational
    }


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
    common, task_factors, _ = resolve(factors, tasks)
    reader = TeacherReader(teacher)

    def teacher_code(images):
        return reader(images)[1][-1]

    readers = {TEACHER: teacher_code, COMMON: common}
    for task, factor in task_factors.items():
        readers[task] = factor.encode
    return readers


__all__ = [
    "COMMON",
    "TEACHER",
    "collect_codes",
    "concatenate_blocks",
    "factorizer_readers",
    "sampled_task_readers",
    "saved_factor_readers",
]
