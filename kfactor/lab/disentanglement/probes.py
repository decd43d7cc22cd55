"""Factor-level probes of factorized codes: leakage, block MI, transfer.

Knowledge Factorization splits a representation into a common code and one
code block per task. These measures ask, block by block, which factors a
block carries:

- `linear_probe`: how well a linear classifier reads one factor from one
  code (e.g. the frozen common code: the transfer probe);
- `principal_subspace_probe`: the same probe on a code's loud (top
  principal) directions and on its faint ones, apart;
- `leakage_matrix`: the probe accuracy of every task block on every factor;
  off the diagonal it should sit at chance when factors are disentangled;
- `block_mutual_info` (in `block_mi.py`): the same question answered with
  the discrete mutual information of `mig`, without a classifier.

Timing (measured once by hand on 2 CPU cores shared with other jobs),
10,000 train and 5,000 test samples: `leakage_matrix` with 5 two-dimensional
blocks and 5 factors, 2.6 s for factors of 4 values and 17 s for
dSprites-sized factors (3, 6, 40, 32, 32 values); `linear_probe` from D=10
to a 40-valued factor, 3 s; `block_mutual_info`, 0.1 s.
"""

import dataclasses
from typing import NamedTuple

from kfactor.lab.disentanglement import _parallel
from kfactor.lab.disentanglement import _validation
from kfactor.lab.disentanglement import blocks

import numpy as np
from sklearn import decomposition
from sklearn import linear_model
from sklearn import neighbors

#: Neighbours of the nonlinear (kNN) probe.
KNN_NEIGHBORS = 15
PROBES = ("linear", "knn")


class ProbeResult(NamedTuple):
    """Test accuracy of a probe and the majority-class rate of the test set."""

    accuracy: float
    chance: float


@dataclasses.dataclass(frozen=True, eq=False)
class LeakageResult:
    """Probe accuracies of code blocks (rows) on factors (columns).

    Attributes:
        matrix: float array `(num_blocks, K)` of test accuracies.
        block_names: tuple of the row names.
        factor_names: tuple of the column names.
        chance: float array `(K,)`, each factor's majority-class rate on the
            test set.
        max_offdiag_above_chance: the largest `matrix[b, k] - chance[k]`
            over cells whose block name differs from the factor name (NaN if
            there is no such cell).
    """

    matrix: np.ndarray
    block_names: tuple
    factor_names: tuple
    chance: np.ndarray
    max_offdiag_above_chance: float

    @property
    def above_chance(self):
        """`matrix - chance`, the accuracy gained over a constant guess."""
        return self.matrix - self.chance[np.newaxis, :]

    @property
    def offdiag_mask(self):
        """Boolean `(num_blocks, K)`, True where block name != factor name."""
        return np.array(
            [[b != f for f in self.factor_names] for b in self.block_names],
            dtype=bool,
        ).reshape(len(self.block_names), len(self.factor_names))


def majority_rate(labels):
    """The frequency of the most common label: a constant guess's accuracy."""
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / labels.shape[0])


class LinearProbe(NamedTuple):
    """A fitted logistic regression on whitened codes (`fit_linear_probe`)."""

    classifier: linear_model.LogisticRegression
    mean: np.ndarray
    projection: np.ndarray

    def transform(self, codes):
        """Whitens `codes` with the train statistics."""
        return (codes - self.mean) @ self.projection


def fit_linear_probe(train, labels_train, random_state=0, max_iter=1000):
    """A multinomial logistic regression (lbfgs, `C=1`) on PCA-whitened
    codes: whitening makes it blind to rotations (and scalings) of the code,
    so a block is scored as a whole, not by its axes."""
    mean, projection = blocks.whitening(train)
    classifier = linear_model.LogisticRegression(
        random_state=random_state, max_iter=max_iter
    )
    classifier.fit((train - mean) @ projection, labels_train)
    return LinearProbe(classifier, mean, projection)


def _fit_probe(
    train,
    labels_train,
    test,
    labels_test,
    random_state,
    max_iter,
    probe="linear",
):
    """Test accuracy of a whitened logistic regression or of a kNN
    classifier on standardized codes."""
    classes = np.unique(labels_train)
    if classes.size == 1:
        return float(np.mean(labels_test == classes[0]))
    if probe == "linear":
        fitted = fit_linear_probe(train, labels_train, random_state, max_iter)
        predicted = fitted.classifier.predict(fitted.transform(test))
        return float(np.mean(predicted == labels_test))
    train, test = _validation.standardize(train, test)
    classifier = neighbors.KNeighborsClassifier(
        n_neighbors=min(KNN_NEIGHBORS, len(train))
    )
    classifier.fit(train, labels_train)
    return float(np.mean(classifier.predict(test) == labels_test))


def linear_probe(
    codes_train,
    labels_train,
    codes_test,
    labels_test,
    random_state=0,
    max_iter=1000,
):
    r"""Test accuracy of a linear classifier reading a factor from codes.

    Codes are PCA-whitened with the train mean and covariance (directions
    of zero variance dropped; see `fit_linear_probe`), so the accuracy does
    not depend on how the code is rotated; a multinomial
    `LogisticRegression` (lbfgs, `C=1`) is fitted on the train set, and
    its accuracy on the test set is returned with the chance level, the
    majority-class rate of the test labels:

    $$\mathrm{chance} = \max_c \frac{1}{M} \sum_{i=1}^{M}
        [y^{\mathrm{test}}_i = c].$$

    If `labels_train` is constant, the probe predicts that single value
    (no classifier is fitted).

    Args:
        codes_train: float array `(N, D)`, samples first.
        labels_train: int array `(N,)` of class labels.
        codes_test: float array `(M, D)`.
        labels_test: int array `(M,)`.
        random_state: seed passed to the logistic regression.
        max_iter: iteration limit of the logistic regression.

    Returns:
        `ProbeResult(accuracy, chance)`, two floats in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from kfactor.lab import disentanglement as metrics
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, size=600)
    >>> codes = np.stack([labels, rng.normal(size=600)], axis=1)
    >>> result = metrics.linear_probe(codes[:400], labels[:400],
    ...                               codes[400:], labels[400:])
    >>> result.accuracy, bool(result.chance < 0.5)
    (1.0, True)

    #### References

    [1]: Guillaume Alain, Yoshua Bengio. Understanding intermediate layers
         using linear classifier probes. _arXiv_, 2016.
         https://arxiv.org/abs/1610.01644
    [2]: Xingyi Yang, Jingwen Ye, Xinchao Wang. Factorizing Knowledge in
         Neural Networks. In _European Conference on Computer Vision_,
         2022. https://arxiv.org/abs/2207.03337
    """
    codes_train = _validation.check_codes(codes_train, "codes_train")
    codes_test = _validation.check_codes(codes_test, "codes_test")
    labels_train = _validation.check_labels(labels_train, "labels_train", 1)
    labels_test = _validation.check_labels(labels_test, "labels_test", 1)
    _validation.check_same_samples(
        codes_train, labels_train, "codes_train", "labels_train"
    )
    _validation.check_same_samples(
        codes_test, labels_test, "codes_test", "labels_test"
    )
    if codes_train.shape[1] != codes_test.shape[1]:
        raise ValueError(
            "Expected codes_train and codes_test to have the same number of "
            f"code dimensions. Received: codes_train.shape="
            f"{codes_train.shape}, codes_test.shape={codes_test.shape}."
        )
    accuracy = _fit_probe(
        codes_train,
        labels_train,
        codes_test,
        labels_test,
        random_state,
        max_iter,
    )
    return ProbeResult(accuracy, majority_rate(labels_test))


class SubspaceProbeResult(NamedTuple):
    """Linear probes on a code's top principal components and on the rest
    (`principal_subspace_probe`)."""

    top: float
    rest: float
    variance_share: float
    chance: float


def principal_subspace_probe(
    codes_train,
    labels_train,
    codes_test,
    labels_test,
    num_components,
    random_state=0,
    max_iter=1000,
):
    """`linear_probe` on a code's top principal components, and on the rest.

    PCA is fitted on the train codes. `top` reads the factor from the first
    `num_components` components, `rest` from the others. A whitened probe
    on the whole code reads both, and whitening amplifies a faint
    direction as much as a loud one. So a factor that only `rest` reads is
    held in directions carrying `1 - variance_share` of the code's
    variance: the signal that a per-sample KL barely charges (method
    reference section 8), and that a head trained on noisy samples of the
    code can hardly use.

    Args:
        codes_train, labels_train, codes_test, labels_test: as for
            `linear_probe`.
        num_components: components in `top`, from 1 to the code's
            dimension minus 1 (so that `rest` is not empty).
        random_state, max_iter: as for `linear_probe`.

    Returns:
        `SubspaceProbeResult(top, rest, variance_share, chance)`: the two
        test accuracies, the share of the train variance in `top`, and the
        test labels' majority-class rate.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> loud, faint = rng.integers(0, 2, (2, 2000))
    >>> codes = np.stack([loud + 0.1 * rng.normal(size=2000),
    ...                   0.01 * faint + 0.001 * rng.normal(size=2000)], 1)
    >>> result = principal_subspace_probe(
    ...     codes[:1000], faint[:1000], codes[1000:], faint[1000:], 1)
    >>> result.top < 0.6, result.rest > 0.99, result.variance_share > 0.99
    (True, True, True)
    """
    codes_train = _validation.check_codes(codes_train, "codes_train")
    codes_test = _validation.check_codes(codes_test, "codes_test")
    dim = codes_train.shape[1]
    if not isinstance(num_components, (int, np.integer)) or not (
        1 <= num_components < dim
    ):
        raise ValueError(
            f"Expected num_components in [1, {dim - 1}] for codes of "
            f"dimension {dim} (the rest must keep a component). Received: "
            f"num_components={num_components!r}."
        )
    pca = decomposition.PCA().fit(codes_train)
    train, test = pca.transform(codes_train), pca.transform(codes_test)
    top, rest = _parallel.map_fits(
        linear_probe,
        (
            (
                train[:, part],
                labels_train,
                test[:, part],
                labels_test,
                random_state,
                max_iter,
            )
            for part in (slice(num_components), slice(num_components, None))
        ),
    )
    share = float(np.sum(pca.explained_variance_ratio_[:num_components]))
    return SubspaceProbeResult(top.accuracy, rest.accuracy, share, top.chance)


def leakage_matrix(
    blocks_train,
    factors_train,
    blocks_test,
    factors_test,
    factor_names,
    random_state=0,
    max_iter=1000,
    probe="linear",
):
    r"""Linear-probe accuracy of every code block on every factor.

    For every block `b` (e.g. a task code `z_task^k`) and factor `j`, a
    `linear_probe` is trained from the block's train codes to the factor and
    scored on the test set:

    $$A_{bj} = \mathrm{acc}\big(\mathrm{probe}(z_b \to v_j)\big), \qquad
      \mathrm{leak} = \max_{b, j:\ \mathrm{name}(b) \ne
      \mathrm{name}(j)} \big(A_{bj} - \mathrm{chance}_j\big).$$

    The "diagonal" cells are those whose block name equals the factor name
    (a task block and its own factor). When each block holds only its own
    factor, the off-diagonal cells sit near the chance rate (the
    majority-class rate on the test set) and `max_offdiag_above_chance` is
    near 0; a block that leaks another factor shows up as a large value.
    Every block passed is probed, so a common block counts as off-diagonal
    everywhere; leave it out to measure task blocks only. A factor constant
    in `factors_train` is predicted as that constant (see `linear_probe`).

    Args:
        blocks_train: dict block name -> float array `(N, D_b)`.
        factors_train: int array `(N, K)`.
        blocks_test: dict with the same names -> float array `(M, D_b)`.
        factors_test: int array `(M, K)`.
        factor_names: `K` distinct names of the factor columns.
        random_state: seed passed to the logistic regressions.
        max_iter: iteration limit of the logistic regressions.
        probe: `"linear"` (multinomial logistic regression) or `"knn"`
            (a 15-nearest-neighbour classifier on the standardized codes:
            the nonlinear probe, which also sees information a linear
            read-out misses).

    Returns:
        A `LeakageResult` with `matrix` `(num_blocks, K)`, `block_names`
        (the order of `blocks_train`), `factor_names`, `chance` `(K,)` and
        `max_offdiag_above_chance`.

    Example:

    >>> import numpy as np
    >>> from kfactor.lab import disentanglement as metrics
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 2, size=(600, 2))
    >>> blocks = {"a": factors[:, :1] + 0.1 * rng.normal(size=(600, 1)),
    ...           "b": factors[:, 1:] + 0.1 * rng.normal(size=(600, 1))}
    >>> train = {k: v[:400] for k, v in blocks.items()}
    >>> test = {k: v[400:] for k, v in blocks.items()}
    >>> result = metrics.leakage_matrix(train, factors[:400], test,
    ...                                 factors[400:], ["a", "b"])
    >>> bool(result.max_offdiag_above_chance < 0.1)
    True

    #### References

    [1]: Xingyi Yang, Jingwen Ye, Xinchao Wang. Factorizing Knowledge in
         Neural Networks. In _European Conference on Computer Vision_,
         2022. https://arxiv.org/abs/2207.03337
    [2]: Guillaume Alain, Yoshua Bengio. Understanding intermediate layers
         using linear classifier probes. _arXiv_, 2016.
         https://arxiv.org/abs/1610.01644
    """
    if probe not in PROBES:
        raise ValueError(
            f"Expected probe in {PROBES}. Received: probe={probe!r}"
        )
    checked = _validation.check_block_splits(
        blocks_train, factors_train, blocks_test, factors_test, factor_names
    )
    blocks_train, factors_train, blocks_test, factors_test, names = checked
    block_names = tuple(blocks_train)
    for block in block_names:
        train, test = blocks_train[block], blocks_test[block]
        if train.shape[1] != test.shape[1]:
            raise ValueError(
                f"Expected block {block!r} to have the same number of "
                f"dimensions in train and test. Received: "
                f"{train.shape} and {test.shape}."
            )
    accuracies = _parallel.map_fits(
        _fit_probe,
        (
            (
                blocks_train[block],
                factors_train[:, j],
                blocks_test[block],
                factors_test[:, j],
                random_state,
                max_iter,
                probe,
            )
            for block in block_names
            for j in range(len(names))
        ),
    )
    matrix = np.reshape(accuracies, (len(block_names), len(names)))
    chance = np.array(
        [majority_rate(factors_test[:, j]) for j in range(len(names))]
    )
    return leakage_result(matrix, block_names, names, chance)


def leakage_result(matrix, block_names, factor_names, chance):
    """A `LeakageResult` of probe accuracies, its maximum filled in."""
    result = LeakageResult(
        np.asarray(matrix, dtype=float),
        tuple(block_names),
        tuple(factor_names),
        np.asarray(chance, dtype=float),
        float("nan"),
    )
    offdiag = result.above_chance[result.offdiag_mask]
    if offdiag.size:
        result = dataclasses.replace(
            result, max_offdiag_above_chance=float(offdiag.max())
        )
    return result


__all__ = [
    "KNN_NEIGHBORS",
    "PROBES",
    "LeakageResult",
    "LinearProbe",
    "ProbeResult",
    "SubspaceProbeResult",
    "fit_linear_probe",
    "leakage_matrix",
    "leakage_result",
    "linear_probe",
    "majority_rate",
    "principal_subspace_probe",
]
