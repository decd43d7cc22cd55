"""Keras callbacks of the factorization: `CommonCollapseMonitor`.

The monitor reads the health measures the `Factorizer` logs
(`kfactor.objective.health`) and warns with `CommonFactorCollapseWarning`
when they say the common code collapsed.
"""

import warnings

from kfactor.objective.health import COLLAPSE_COSINE
from kfactor.objective.health import COLLAPSE_PARTICIPATION_RATIO

import keras


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
    "CommonCollapseMonitor",
    "CommonFactorCollapseWarning",
]
