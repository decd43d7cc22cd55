r"""A probe-based lower bound on the MI between a code block and a factor.

For a block `z_b` and a discrete factor `v`, any classifier `q(v | z_b)`
gives the variational (Barber-Agakov) lower bound

$$I(z_b; v) \;\ge\; H(v) - \mathbb{E}\left[-\log q(v \mid z_b)\right],$$

in nats. Here `q` is a multinomial logistic regression fitted on the train
codes, its cross-entropy is measured on held-out codes, and `H(v)` is the
cross-entropy of the train label frequencies on the held-out labels (the
bound of a probe that ignores the code), so a block that knows nothing
scores about 0 and a block that determines the factor about `H(v)`.

Unlike per-dimension measures (MIG, `block_mutual_info`'s maximum over
dimensions), the bound reads the block as a whole and is invariant to
rotations of the block: codes are whitened with the train covariance before
the probe, and logistic regression's L2 penalty is itself rotation
invariant, so `z_b R` for any orthogonal `R` gives the same bound.
"""

import dataclasses

from kfactor.metrics import _validation

import numpy as np
from sklearn import linear_model

#: Probabilities are clipped here before the log (a probe may give 0).
MIN_PROBABILITY = 1e-12


@dataclasses.dataclass(frozen=True, eq=False)
class ProbeMutualInfo:
    """MI lower bounds (nats) of code blocks (rows) on factors (columns).

    Attributes:
        matrix: float `(num_blocks, K)` lower bounds.
        entropy: float `(K,)`, each factor's entropy estimate `H(v)`.
        block_names: tuple of the row names.
        factor_names: tuple of the column names.
    """

    matrix: np.ndarray
    entropy: np.ndarray
    block_names: tuple
    factor_names: tuple


def _whiten(train, test):
    """Whitens both with the train mean and covariance (PCA whitening);
    directions of (near) zero variance are dropped."""
    mean = train.mean(axis=0)
    centered = train - mean
    covariance = centered.T @ centered / max(len(train) - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    keep = values > 1e-10 * max(values.max(), 1e-30)
    if not keep.any():
        return np.zeros((len(train), 1)), np.zeros((len(test), 1))
    transform = vectors[:, keep] / np.sqrt(values[keep])
    return centered @ transform, (test - mean) @ transform


def _marginal_cross_entropy(labels_train, labels_test):
    classes, counts = np.unique(labels_train, return_counts=True)
    frequency = dict(zip(classes, counts / counts.sum()))
    probabilities = np.array(
        [frequency.get(label, 0.0) for label in labels_test]
    )
    return float(-np.mean(np.log(np.maximum(probabilities, MIN_PROBABILITY))))


def _probe_cross_entropy(train, labels_train, test, labels_test, seed, iters):
    classes = np.unique(labels_train)
    if classes.size == 1:
        return _marginal_cross_entropy(labels_train, labels_test)
    train, test = _whiten(train, test)
    probe = linear_model.LogisticRegression(random_state=seed, max_iter=iters)
    probe.fit(train, labels_train)
    probabilities = probe.predict_proba(test)
    index = {c: i for i, c in enumerate(probe.classes_)}
    columns = np.array([index.get(label, -1) for label in labels_test])
    picked = np.where(
        columns >= 0,
        probabilities[np.arange(len(test)), np.maximum(columns, 0)],
        0.0,
    )
    return float(-np.mean(np.log(np.maximum(picked, MIN_PROBABILITY))))


def probe_mutual_info(
    blocks_train,
    factors_train,
    blocks_test,
    factors_test,
    factor_names,
    random_state=0,
    max_iter=1000,
):
    """The probe MI lower bound of every block on every factor, in nats.

    Args:
        blocks_train: dict block name -> float `(N, D_b)`.
        factors_train: int `(N, K)`.
        blocks_test: dict with the same names -> float `(M, D_b)`.
        factors_test: int `(M, K)`.
        factor_names: the `K` factor names.
        random_state: seed of the logistic regressions.
        max_iter: their iteration limit.

    Returns:
        A `ProbeMutualInfo`.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 2, size=(800, 1))
    >>> blocks = {"a": factors + 0.1 * rng.normal(size=(800, 1))}
    >>> result = probe_mutual_info(
    ...     {"a": blocks["a"][:600]}, factors[:600],
    ...     {"a": blocks["a"][600:]}, factors[600:], ["v"])
    >>> bool(result.matrix[0, 0] > 0.6)   # H(v) = log 2 = 0.69
    True
    """
    (
        blocks_train,
        factors_train,
        blocks_test,
        factors_test,
        names,
    ) = _validation.check_block_splits(
        blocks_train, factors_train, blocks_test, factors_test, factor_names
    )
    block_names = tuple(blocks_train)
    entropy = np.array(
        [
            _marginal_cross_entropy(factors_train[:, k], factors_test[:, k])
            for k in range(len(names))
        ]
    )
    matrix = np.zeros((len(block_names), len(names)))
    for b, block in enumerate(block_names):
        for k in range(len(names)):
            cross_entropy = _probe_cross_entropy(
                blocks_train[block],
                factors_train[:, k],
                blocks_test[block],
                factors_test[:, k],
                random_state,
                max_iter,
            )
            matrix[b, k] = entropy[k] - cross_entropy
    return ProbeMutualInfo(matrix, entropy, block_names, names)


__all__ = ["ProbeMutualInfo", "probe_mutual_info"]
