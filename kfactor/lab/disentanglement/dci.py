"""DCI disentanglement, completeness, informativeness (disentanglement_lib).

A default `GradientBoostingClassifier` fits `100 * C` trees for a factor
with `C` values, so its cost grows with the training set size times the
total number of factor values. `dci` therefore fits on at most
`max_train_samples` (default 1,000) training samples, drawn without
replacement with `random_state`; pass `max_train_samples=None` for the
reference's full-size fit (disentanglement_lib uses 10,000).

Timing (measured once by hand on 2 CPU cores shared with other jobs),
10,000 train and 5,000 test samples, D=10:
  - K=5 dSprites-sized factors (3, 6, 40, 32, 32 values; 113 in all):
    56 s with the default `max_train_samples=1000`; the full 10,000 was
    not measured (GBT fits grow about linearly with the sample count).
  - K=5 factors of 4 values each (20 in all): 7 s with the default, 85 s
    with `max_train_samples=None`.
With many-valued factors 1,000 samples leave the classifiers overfitted
(test informativeness 0.50 against train 1.00 in the first case), so
report informativeness from a larger `max_train_samples` when it matters.
"""

from kfactor.lab.disentanglement import _validation
from kfactor.lab.disentanglement.blocks import whiten

import numpy as np
from sklearn import ensemble
from sklearn import linear_model
from sklearn import utils as sklearn_utils

#: How `block_dci` measures the importance of a block for a factor.
BLOCK_IMPORTANCES = ("linear", "gbt")

# Added to every importance before taking entropies, as in the reference, so
# that an all-zero row or column has a defined (uniform) distribution.
_EPSILON = 1e-11


def _normalized_entropy(weights, axis):
    """Entropy of `weights` normalized along `axis`, in base `shape[axis]`."""
    size = weights.shape[axis]
    if size == 1:
        return np.zeros(weights.shape[1 - axis])
    p = (weights + _EPSILON) / np.sum(weights + _EPSILON, axis, keepdims=True)
    return -np.sum(p * np.log(p), axis=axis) / np.log(size)


def _weighted_score(importance, axis):
    """`sum_i rho_i (1 - H_i)`, the entropies taken along `1 - axis`."""
    per_item = 1.0 - _normalized_entropy(importance, axis=1 - axis)
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    weight = importance.sum(axis=1 - axis) / importance.sum()
    return float(np.sum(per_item * weight))


def _subsample(codes, factors, max_samples, random_state):
    if max_samples is None or codes.shape[0] <= max_samples:
        return codes, factors
    rng = sklearn_utils.check_random_state(random_state)
    index = np.sort(rng.choice(codes.shape[0], max_samples, replace=False))
    return codes[index], factors[index]


def _check_max_samples(max_train_samples):
    if max_train_samples is None:
        return
    if (
        isinstance(max_train_samples, bool)
        or not isinstance(max_train_samples, (int, np.integer))
        or max_train_samples < 2
    ):
        raise ValueError(
            "Expected `max_train_samples` to be None or an int >= 2. "
            f"Received: max_train_samples={max_train_samples!r}."
        )


def dci(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    random_state=0,
    max_train_samples=1000,
):
    r"""Disentanglement, completeness and informativeness (DCI).

    For each factor `k` a default `GradientBoostingClassifier` is trained on
    all code dimensions; `R_{dk} = |importance of z_d for v_k|` (the
    `feature_importances_`). With `P_{dk} = R_{dk} / sum_k R_{dk}` and
    `Q_{dk} = R_{dk} / sum_d R_{dk}` (each after adding `1e-11` to `R`, as
    the reference does):

    $$D = \sum_d \rho_d \big(1 + \sum_k P_{dk} \log_K P_{dk}\big),
      \quad \rho_d = \frac{\sum_k R_{dk}}{\sum_{dk} R_{dk}},$$
    $$C = \sum_k \rho_k \big(1 + \sum_d Q_{dk} \log_D Q_{dk}\big),
      \quad \rho_k = \frac{\sum_d R_{dk}}{\sum_{dk} R_{dk}}.$$

    Informativeness is the classifiers' accuracy (higher is better), mean
    over factors, on the training and the test set.

    The numbers equal disentanglement_lib's `_compute_dci` on the same
    (sub)sampled arrays. Deviations: training data is subsampled to
    `max_train_samples` (see module doc; `None` disables it); factors
    constant in `factors_train` are excluded; with a single factor
    (`K=1`) disentanglement is 1 and with a single code dimension (`D=1`)
    completeness is 1 (the reference divides by `log 1 = 0`).

    Args:
        codes_train: float array `(N, D)`, samples first.
        factors_train: int array `(N, K)` of discrete factor values.
        codes_test: float array `(M, D)`.
        factors_test: int array `(M, K)`.
        random_state: int seed, `numpy.random.RandomState` or None, for
            the subsampling and the boosted trees (passed to each
            `GradientBoostingClassifier` in turn, so a `RandomState` is
            consumed across factors, as the reference's global RNG is).
        max_train_samples: fit on at most this many training samples, or
            `None` to use all.

    Returns:
        dict with floats `disentanglement`, `completeness`,
        `informativeness_train` and `informativeness_test`, all in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from kfactor.lab import disentanglement as metrics
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 3, size=(400, 2))
    >>> codes = factors + 0.05 * rng.normal(size=(400, 2))
    >>> scores = metrics.dci(codes[:300], factors[:300], codes[300:],
    ...                      factors[300:])
    >>> bool(scores["disentanglement"] > 0.9)
    True

    #### References

    [1]: Cian Eastwood, Christopher K. I. Williams. A Framework for the
         Quantitative Evaluation of Disentangled Representations. In
         _International Conference on Learning Representations_, 2018.
         https://openreview.net/forum?id=By-7dz-AZ
    [2]: Francesco Locatello et al. Challenging Common Assumptions in the
         Unsupervised Learning of Disentangled Representations. In
         _International Conference on Machine Learning_, 2019.
         https://arxiv.org/abs/1811.12359
    """
    _check_max_samples(max_train_samples)
    codes_train, factors_train, codes_test, factors_test, _ = (
        _validation.check_train_test(
            codes_train, factors_train, codes_test, factors_test
        )
    )
    codes_train, factors_train = _subsample(
        codes_train, factors_train, max_train_samples, random_state
    )
    # Subsampling can leave a factor constant; drop it like any other.
    keep = _validation.informative_factors(factors_train, "factors_train")
    factors_train = factors_train[:, keep]
    factors_test = factors_test[:, keep]

    num_factors = factors_train.shape[1]
    importance = np.zeros((codes_train.shape[1], num_factors))
    accuracy_train = np.zeros(num_factors)
    accuracy_test = np.zeros(num_factors)
    for k in range(num_factors):
        model = ensemble.GradientBoostingClassifier(random_state=random_state)
        model.fit(codes_train, factors_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy_train[k] = np.mean(
            model.predict(codes_train) == factors_train[:, k]
        )
        accuracy_test[k] = np.mean(
            model.predict(codes_test) == factors_test[:, k]
        )
    return {
        "disentanglement": _weighted_score(importance, axis=0),
        "completeness": _weighted_score(importance, axis=1),
        "informativeness_train": float(np.mean(accuracy_train)),
        "informativeness_test": float(np.mean(accuracy_test)),
    }


def _linear_block_importance(
    blocks_train, blocks_test, labels_train, labels_test, random_state, max_iter
):
    """Per-block importances and test accuracy of one logistic regression.

    Each block is whitened on its own, the blocks are concatenated and a
    multinomial logistic regression reads the factor; a block's importance
    is the sum of its dimensions' squared coefficients (over classes),
    invariant to rotations of the block.
    """
    names = list(blocks_train)
    whitened = [whiten(blocks_train[b], blocks_test[b]) for b in names]
    sizes = [train.shape[1] for train, _ in whitened]
    train = np.concatenate([w[0] for w in whitened], axis=1)
    test = np.concatenate([w[1] for w in whitened], axis=1)
    if np.unique(labels_train).size == 1:
        return (
            np.zeros(len(names)),
            float(np.mean(labels_test == labels_train[0])),
            1.0,
        )
    model = linear_model.LogisticRegression(
        random_state=random_state, max_iter=max_iter
    )
    model.fit(train, labels_train)
    squared = np.sum(np.square(model.coef_), axis=0)
    bounds = np.cumsum([0, *sizes])
    importance = np.array(
        [squared[bounds[i] : bounds[i + 1]].sum() for i in range(len(names))]
    )
    return (
        importance,
        float(np.mean(model.predict(test) == labels_test)),
        float(np.mean(model.predict(train) == labels_train)),
    )


def _gbt_block_importance(
    blocks_train, blocks_test, labels_train, labels_test, random_state
):
    """Per-block sums of a boosted-tree classifier's feature importances."""
    names = list(blocks_train)
    train = np.concatenate([blocks_train[b] for b in names], axis=1)
    test = np.concatenate([blocks_test[b] for b in names], axis=1)
    model = ensemble.GradientBoostingClassifier(random_state=random_state)
    model.fit(train, labels_train)
    bounds = np.cumsum([0, *(blocks_train[b].shape[1] for b in names)])
    per_dim = np.abs(model.feature_importances_)
    importance = np.array(
        [per_dim[bounds[i] : bounds[i + 1]].sum() for i in range(len(names))]
    )
    return (
        importance,
        float(np.mean(model.predict(test) == labels_test)),
        float(np.mean(model.predict(train) == labels_train)),
    )


def block_dci(
    blocks_train,
    factors_train,
    blocks_test,
    factors_test,
    factor_names,
    importance="linear",
    random_state=0,
    max_train_samples=None,
    max_iter=1000,
):
    r"""DCI with code *blocks* in place of code dimensions.

    The importance `R_{bk}` of block `b` for factor `k` is the sum of its
    dimensions' importances; disentanglement and completeness are then
    `dci`'s formulas over blocks (D: does each block matter for one factor
    only; C: is each factor read from one block only). Five task-pure
    blocks score D = C = 1 however each block is rotated, where per-
    dimension DCI, MIG and SAP need axis-aligned codes.

    Importances:

    - `"linear"` (default, fast): each block is PCA-whitened
      (`lab.disentanglement.blocks.whiten`), a multinomial logistic regression
      reads the factor from all blocks, and a dimension's importance is
      its squared coefficients summed over classes. Invariant to rotations
      of a block.
    - `"gbt"`: the reference's `GradientBoostingClassifier`
      `feature_importances_`, summed within each block (slow: see the
      module doc; not rotation invariant).

    Args:
        blocks_train: dict block name -> float `(N, D_b)`.
        factors_train: int `(N, K)`.
        blocks_test: dict with the same names -> float `(M, D_b)`.
        factors_test: int `(M, K)`.
        factor_names: the `K` factor names.
        importance: `"linear"` or `"gbt"`.
        random_state: seed of the classifiers and of the subsampling.
        max_train_samples: fit on at most this many training samples
            (`None`: all).
        max_iter: iteration limit of the logistic regressions.

    Returns:
        dict with floats `disentanglement`, `completeness`,
        `informativeness_train`, `informativeness_test` (mean classifier
        accuracy), the `importance` matrix `(num_blocks, K)` as a list, and
        `block_names` / `factor_names`.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 3, size=(600, 2))
    >>> blocks = {"a": factors[:, :1] + 0.1 * rng.normal(size=(600, 2)),
    ...           "b": factors[:, 1:] + 0.1 * rng.normal(size=(600, 2))}
    >>> scores = block_dci({k: v[:400] for k, v in blocks.items()},
    ...     factors[:400], {k: v[400:] for k, v in blocks.items()},
    ...     factors[400:], ["a", "b"])
    >>> bool(scores["disentanglement"] > 0.9)
    True
    """
    if importance not in BLOCK_IMPORTANCES:
        raise ValueError(
            f"Expected importance in {BLOCK_IMPORTANCES}. Received: "
            f"importance={importance!r}."
        )
    _check_max_samples(max_train_samples)
    checked = _validation.check_block_splits(
        blocks_train, factors_train, blocks_test, factors_test, factor_names
    )
    blocks_train, factors_train, blocks_test, factors_test, names = checked
    block_names = list(blocks_train)
    if max_train_samples is not None and len(factors_train) > max_train_samples:
        rng = sklearn_utils.check_random_state(random_state)
        index = np.sort(
            rng.choice(len(factors_train), max_train_samples, replace=False)
        )
        blocks_train = {b: v[index] for b, v in blocks_train.items()}
        factors_train = factors_train[index]
    matrix = np.zeros((len(block_names), len(names)))
    accuracy_train = np.zeros(len(names))
    accuracy_test = np.zeros(len(names))
    for k in range(len(names)):
        if importance == "linear":
            result = _linear_block_importance(
                blocks_train,
                blocks_test,
                factors_train[:, k],
                factors_test[:, k],
                random_state,
                max_iter,
            )
        else:
            result = _gbt_block_importance(
                blocks_train,
                blocks_test,
                factors_train[:, k],
                factors_test[:, k],
                random_state,
            )
        matrix[:, k], accuracy_test[k], accuracy_train[k] = result
    return {
        "disentanglement": _weighted_score(matrix, axis=0),
        "completeness": _weighted_score(matrix, axis=1),
        "informativeness_train": float(np.mean(accuracy_train)),
        "informativeness_test": float(np.mean(accuracy_test)),
        "importance": matrix.tolist(),
        "block_names": block_names,
        "factor_names": list(names),
    }


__all__ = [
    "BLOCK_IMPORTANCES",
    "block_dci",
    "dci",
]
