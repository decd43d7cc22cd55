"""Health of a factorization: is the common code alive, do task codes squeeze?

A factorization can look fine by accuracy alone while failing as a
factorization: when the common code `z_common` collapses to a constant, every
"factor network" is an independent single-task network learned from the
labels. These measures tell that apart while training (`Factorizer` logs
them) and afterwards (`kfactor.evaluation.report`):

- `mean_pairwise_cosine(z)`: the mean cosine between the codes of different
  images; near 1 when every image gets (a multiple of) the same code.
- `participation_ratio(z)`: `tr(C)^2 / tr(C^2)` of the codes' covariance
  `C`, the effective number of dimensions the codes use (1 for a code that
  varies along one direction only, `dim` for isotropic codes).
- `task_code_kl(code)`: the size of a task code's bottleneck in nats, the
  KL that `InfoMinLoss` penalises.

`CommonCollapseMonitor` is the callback that warns (and optionally stops
training) when the logged common-code measures say the code collapsed.
"""

import warnings

from kfactor.objective import losses as losses_lib

import keras
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

    >>> float(mean_pairwise_cosine(np.ones((4, 3))))
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
        return losses_lib.vib_kl(
            ops.cast(code.mean, "float32"), ops.cast(code.log_var, "float32")
        )
    return losses_lib.batch_moment_kl(ops.cast(code.mean, "float32"))


class CommonFactorCollapseWarning(UserWarning):
    """The common code has collapsed: the factor networks cannot share it."""


class CommonCollapseMonitor(keras.callbacks.Callback):
    """Warns when the common code collapses during `Factorizer.fit`.

    Reads the `common_cosine` and `common_participation_ratio` that the
    `Factorizer` logs (means over the epoch, or over the batches so far when
    `every_n_batches` is set) and warns with `CommonFactorCollapseWarning`
    when the cosine is above `max_cosine` or the participation ratio below
    `min_participation_ratio`.

    Args:
        max_cosine: collapse threshold of the mean pairwise cosine.
        min_participation_ratio: collapse threshold of the effective
            dimensions.
        every_n_batches: also check every this many training batches
            (`None`: at the end of each epoch only).
        stop_training: also stop training at the first collapse.
        start_batch: ignore the first batches (codes of a freshly initialised
            network can be nearly collinear).

    Attributes:
        collapsed_at: `(epoch, batch)` of the first collapse seen, or `None`.

    Example:

    >>> monitor = CommonCollapseMonitor(stop_training=True)
    >>> monitor.collapsed_at is None
    True
    """

    def __init__(
        self,
        max_cosine=COLLAPSE_COSINE,
        min_participation_ratio=COLLAPSE_PARTICIPATION_RATIO,
        every_n_batches=None,
        stop_training=False,
        start_batch=0,
    ):
        super().__init__()
        if not -1.0 <= max_cosine <= 1.0:
            raise ValueError(
                f"Expected -1 <= max_cosine <= 1. Received: {max_cosine}"
            )
        if min_participation_ratio < 0:
            raise ValueError(
                "Expected min_participation_ratio >= 0. Received: "
                f"{min_participation_ratio}"
            )
        if every_n_batches is not None and every_n_batches < 1:
            raise ValueError(
                "Expected every_n_batches >= 1 or None. Received: "
                f"{every_n_batches}"
            )
        self.max_cosine = float(max_cosine)
        self.min_participation_ratio = float(min_participation_ratio)
        self.every_n_batches = every_n_batches
        self.stop_training = bool(stop_training)
        self.start_batch = int(start_batch)
        self.collapsed_at = None
        self._epoch = 0
        self._batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self.every_n_batches and self._batches % self.every_n_batches == 0:
            self._check(logs, batch)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, None)

    def _check(self, logs, batch):
        if self._batches <= self.start_batch or not logs:
            return
        if "common_cosine" not in logs:
            raise ValueError(
                "CommonCollapseMonitor reads `common_cosine` and "
                "`common_participation_ratio` from the logs, which only "
                "kfactor.Factorizer writes. Received log keys: "
                f"{sorted(logs)}"
            )
        cosine = float(logs["common_cosine"])
        ratio = float(logs["common_participation_ratio"])
        if cosine <= self.max_cosine and ratio >= self.min_participation_ratio:
            return
        where = f"epoch {self._epoch}" + (
            "" if batch is None else f", batch {batch}"
        )
        if self.collapsed_at is None:
            self.collapsed_at = (self._epoch, batch)
        warnings.warn(
            f"The common code collapsed at {where}: mean pairwise cosine "
            f"{cosine:.3f} (limit {self.max_cosine}), participation ratio "
            f"{ratio:.2f} (limit {self.min_participation_ratio}). The factor "
            "networks cannot share a constant code. Check that the teacher "
            "is trained, use InfoMaxLoss(estimator='infonce') (the 'dv' "
            "reference formula rewards collapse) or raise infomax_weight.",
            CommonFactorCollapseWarning,
            stacklevel=2,
        )
        if self.stop_training:
            self.model.stop_training = True


__all__ = [
    "COLLAPSE_COSINE",
    "COLLAPSE_PARTICIPATION_RATIO",
    "CommonCollapseMonitor",
    "CommonFactorCollapseWarning",
    "mean_pairwise_cosine",
    "participation_ratio",
    "task_code_kl",
]
