"""Health of a factorization: is the common code alive, do task codes squeeze?

A factorization can look fine by accuracy alone while failing as a
factorization: when the common code `z_common` collapses to a constant, every
"factor network" is an independent single-task network learned from the
labels. These measures tell that apart while training (`Factorizer` logs
them) and afterwards (`kfactor.lab.evaluation.report`):

- `mean_pairwise_cosine(z)`: the mean cosine between the codes of different
  images; near 1 when every image gets (a multiple of) the same code.
- `participation_ratio(z)`: `tr(C)^2 / tr(C^2)` of the codes' covariance
  `C`, the effective number of dimensions the codes use (1 for a code that
  varies along one direction only, `dim` for isotropic codes).
- `task_code_kl(code)`: the size of a task code's bottleneck in nats, the
  KL that `InfoMinLoss` penalises.

`COLLAPSE_COSINE` and `COLLAPSE_PARTICIPATION_RATIO` are the limits past
which the common code counts as collapsed; the Keras callback that warns
while training is `kfactor.training.callbacks.CommonCollapseMonitor`.
All of it is `keras.ops`.
"""

from kfactor.objective.divergences import batch_moment_kl
from kfactor.objective.divergences import vib_kl

from keras import ops

#: Above this mean pairwise cosine the common code counts as collapsed.
COLLAPSE_COSINE = 0.95
#: Below this participation ratio the common code counts as collapsed.
COLLAPSE_PARTICIPATION_RATIO = 1.5


def mean_pairwise_cosine(codes):
    """Mean cosine similarity between the codes of different examples.

    Args:
        codes: `[batch, dim]` codes, batch >= 2.

    Returns:
        A scalar in [-1, 1]: the mean of `cos(z_i, z_j)` over `i != j`.

    Example:

    >>> round(float(mean_pairwise_cosine(np.ones((4, 3)))), 6)
    1.0
    """
    codes = ops.cast(codes, "float32")
    unit = codes / (ops.norm(codes, axis=-1, keepdims=True) + 1e-10)
    batch = ops.cast(ops.shape(codes)[0], "float32")
    # sum_ij cos_ij = ||sum_i u_i||^2, of which the diagonal adds `batch`
    # (rows of norm 1; a zero row adds 0 and counts as cosine 0).
    total = ops.sum(ops.square(ops.sum(unit, axis=0)))
    diagonal = ops.sum(ops.square(unit))
    return (total - diagonal) / (batch * (batch - 1.0))


def participation_ratio(codes):
    """Effective dimensions of the codes: `tr(C)^2 / tr(C^2)`.

    `C` is the covariance of the codes over the batch. Equals 1 when the
    codes vary along a single direction, `dim` when they vary equally in
    every direction, and 0 for constant codes.

    Args:
        codes: `[batch, dim]` codes.

    Example:

    >>> round(float(participation_ratio(np.eye(4))), 3)
    3.0
    """
    codes = ops.cast(codes, "float32")
    centered = codes - ops.mean(codes, axis=0, keepdims=True)
    covariance = ops.matmul(ops.transpose(centered), centered)
    trace = ops.trace(covariance)
    return ops.divide_no_nan(ops.square(trace), ops.sum(ops.square(covariance)))


def task_code_kl(code):
    """The bottleneck size of a `TaskCode` in nats.

    The per-sample KL of its Gaussian posterior to N(0, I) for a
    variational code; the KL of its batch moments to N(0, 1) (averaged over
    dimensions, the reference's deterministic bottleneck) otherwise.
    """
    if code.log_var is not None:
        return vib_kl(
            ops.cast(code.mean, "float32"), ops.cast(code.log_var, "float32")
        )
    return batch_moment_kl(ops.cast(code.mean, "float32"))


__all__ = [
    "COLLAPSE_COSINE",
    "COLLAPSE_PARTICIPATION_RATIO",
    "mean_pairwise_cosine",
    "participation_ratio",
    "task_code_kl",
]
