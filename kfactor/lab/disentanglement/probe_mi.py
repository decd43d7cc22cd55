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

from kfactor.lab.disentanglement import _parallel
from kfactor.lab.disentanglement import _validation
from kfactor.lab.disentanglement import probes

import numpy as np

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
        accuracy: float `(num_blocks, K)`, the same probes' test accuracy
            (equal to `leakage_matrix(..., probe="linear")`'s matrix).
        chance: float `(K,)`, each factor's majority-class test rate.
    """

    matrix: np.ndarray
    entropy: np.ndarray
    block_names: tuple
    factor_names: tuple
    accuracy: np.ndarray
    chance: np.ndarray

    def leakage(self, block_names=None):
        """The probes' accuracies as a `LeakageResult` of `block_names`
        (all rows by default): the linear leakage matrix, not refitted."""
        block_names = tuple(block_names or self.block_names)
        rows = [self.block_names.index(b) for b in block_names]
        return probes.leakage_result(
            self.accuracy[rows], block_names, self.factor_names, self.chance
        )


def _marginal_cross_entropy(labels_train, labels_test):
    classes, counts = np.unique(labels_train, return_counts=True)
    frequency = dict(zip(classes, counts / counts.sum()))
    probabilities = np.array(
        [frequency.get(label, 0.0) for label in labels_test]
    )
    return float(-np.mean(np.log(np.maximum(probabilities, MIN_PROBABILITY))))


def _probe_scores(train, labels_train, test, labels_test, seed, iters):
    """`(held-out cross-entropy, accuracy)` of the whitened linear probe."""
    classes = np.unique(labels_train)
    if classes.size == 1:
        return (
            _marginal_cross_entropy(labels_train, labels_test),
            float(np.mean(labels_test == classes[0])),
        )
    probe = probes.fit_linear_probe(train, labels_train, seed, iters)
    test = probe.transform(test)
    probabilities = probe.classifier.predict_proba(test)
    accuracy = float(
        np.mean(
            probe.classifier.classes_[probabilities.argmax(1)] == labels_test
        )
    )
    classes = probe.classifier.classes_
    index = {c: i for i, c in enumerate(classes)}
    columns = np.array([index.get(label, -1) for label in labels_test])
    picked = np.where(
        columns >= 0,
        probabilities[np.arange(len(test)), np.maximum(columns, 0)],
        0.0,
    )
    cross_entropy = -np.mean(np.log(np.maximum(picked, MIN_PROBABILITY)))
    return float(cross_entropy), accuracy


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
    checked = _validation.check_block_splits(
        blocks_train, factors_train, blocks_test, factors_test, factor_names
    )
    blocks_train, factors_train, blocks_test, factors_test, names = checked
    block_names = tuple(blocks_train)
    entropy = np.array(
        [
            _marginal_cross_entropy(factors_train[:, k], factors_test[:, k])
            for k in range(len(names))
        ]
    )
    scores = _parallel.map_fits(
        _probe_scores,
        (
            (
                blocks_train[block],
                factors_train[:, k],
                blocks_test[block],
                factors_test[:, k],
                random_state,
                max_iter,
            )
            for block in block_names
            for k in range(len(names))
        ),
    )
    shape = (len(block_names), len(names))
    cross_entropy, accuracy = (np.reshape(s, shape) for s in zip(*scores))
    matrix = entropy[np.newaxis, :] - cross_entropy
    chance = np.array(
        [probes.majority_rate(factors_test[:, k]) for k in range(len(names))]
    )
    return ProbeMutualInfo(
        matrix, entropy, block_names, names, accuracy, chance
    )


__all__ = ["ProbeMutualInfo", "probe_mutual_info"]
