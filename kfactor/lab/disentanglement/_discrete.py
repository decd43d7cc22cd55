"""Histogram discretization and plug-in discrete entropy / mutual information.

This is the discretization of disentanglement_lib's `histogram_discretizer`:
each code dimension is cut into `num_bins` equal-width bins between that
dimension's minimum and maximum (the edges of `np.histogram`), and a value
goes to the bin whose left edge is the largest one not above it (the
maximum lands in the last bin). Only the codes passed in are used to place
the edges, so metrics discretize their **training** codes only.

Entropies and mutual informations are plug-in (maximum-likelihood)
estimates in nats, equal to `sklearn.metrics.mutual_info_score`.
"""

from kfactor.lab.disentanglement import _validation

import numpy as np


def histogram_discretize(codes, num_bins=20):
    """Discretizes each code dimension into `num_bins` equal-width bins.

    Args:
        codes: float array `(N, D)`.
        num_bins: number of bins per dimension.

    Returns:
        int64 array `(N, D)` with bin indices in `[0, num_bins)`.
    """
    codes = _validation.check_codes(codes)
    _validation.check_num_bins(num_bins)
    binned = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], bins=num_bins)
        binned[:, d] = np.digitize(codes[:, d], edges[:-1]) - 1
    return binned


def _to_index(labels):
    """Maps arbitrary integer labels to `0..C-1`; returns (index, C)."""
    values, index = np.unique(labels, return_inverse=True)
    return index.reshape(-1), values.size


def _mutual_info_of_indices(x, num_x, y, num_y):
    """Plug-in MI in nats of two index vectors (values `0..num-1`)."""
    n = x.shape[0]
    joint = np.bincount(x * num_y + y, minlength=num_x * num_y)
    joint = joint.reshape(num_x, num_y).astype(np.float64)
    px = joint.sum(axis=1, keepdims=True)
    py = joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    ratio = joint[nonzero] * n / (px @ py)[nonzero]
    mi = np.sum(joint[nonzero] / n * np.log(ratio))
    return max(float(mi), 0.0)


def discrete_entropy(factors):
    r"""Plug-in entropy in nats of each factor.

    $$H(v_k) = -\sum_c \hat p(v_k = c) \log \hat p(v_k = c).$$

    Args:
        factors: int array `(N, K)`.

    Returns:
        float64 array `(K,)`.
    """
    factors = _validation.check_labels(factors)
    entropy = np.empty(factors.shape[1])
    for k in range(factors.shape[1]):
        _, counts = np.unique(factors[:, k], return_counts=True)
        p = counts / counts.sum()
        entropy[k] = max(float(-np.sum(p * np.log(p))), 0.0)
    return entropy


def mutual_info_of_discrete(binned, factors):
    """Plug-in MI `(D, K)` in nats between discrete codes and factors."""
    code_index = [_to_index(binned[:, d]) for d in range(binned.shape[1])]
    factor_index = [_to_index(factors[:, k]) for k in range(factors.shape[1])]
    mi = np.zeros((binned.shape[1], factors.shape[1]))
    for d, (x, num_x) in enumerate(code_index):
        for k, (y, num_y) in enumerate(factor_index):
            mi[d, k] = _mutual_info_of_indices(x, num_x, y, num_y)
    return mi


def discrete_mutual_info(codes, factors, num_bins=20):
    r"""Per-dimension mutual information between codes and factors.

    Each code dimension `z_d` is discretized into `num_bins` equal-width bins
    between its minimum and maximum (disentanglement_lib's histogram
    discretizer), then the plug-in mutual information in nats is computed
    with every factor `v_k`:

    $$I(z_d; v_k) = \sum_{b, c} \hat p(b, c)
        \log \frac{\hat p(b, c)}{\hat p(b)\, \hat p(c)}.$$

    Constant factors are kept here (their column is 0), unlike in the
    metrics, which drop them.

    Args:
        codes: float array `(N, D)`, samples first.
        factors: int array `(N, K)` of discrete factor values.
        num_bins: number of histogram bins per code dimension.

    Returns:
        float64 array `(D, K)`, the mutual information in nats.

    Example:

    >>> import numpy as np
    >>> from kfactor.lab import disentanglement as metrics
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 4, size=(1000, 2))
    >>> codes = factors + 0.01 * rng.normal(size=(1000, 2))
    >>> mi = metrics.discrete_mutual_info(codes, factors)
    >>> mi.shape
    (2, 2)
    >>> bool(mi[0, 0] > 1.3 and mi[0, 1] < 0.05)
    True

    #### References

    [1]: Francesco Locatello et al. Challenging Common Assumptions in the
         Unsupervised Learning of Disentangled Representations. In
         _International Conference on Machine Learning_, 2019.
         https://arxiv.org/abs/1811.12359
    """
    codes, factors = _validation.check_codes_and_factors(codes, factors)
    binned = histogram_discretize(codes, num_bins)
    return mutual_info_of_discrete(binned, factors)
