"""Discrete mutual information between code blocks and factors."""

import dataclasses

from kfactor.lab.disentanglement import _discrete
from kfactor.lab.disentanglement import _validation

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class BlockMutualInfo:
    """Discrete mutual information of code blocks (rows) with factors.

    Attributes:
        matrix: float array `(num_blocks, K)`, `max_d I(z_d; v_k) / H(v_k)`
            over the block's dimensions `d` (0 for a constant factor).
        mutual_info: float array `(num_blocks, K)`, `max_d I(z_d; v_k)` in
            nats.
        block_names: tuple of the row names.
        factor_names: tuple of the column names.
        entropy: float array `(K,)`, the factors' entropies in nats.
    """

    matrix: np.ndarray
    mutual_info: np.ndarray
    block_names: tuple
    factor_names: tuple
    entropy: np.ndarray


def block_mutual_info(blocks, factors, factor_names, num_bins=20):
    r"""Normalized discrete mutual information of code blocks with factors.

    Every dimension of every block is discretized as in `mig` (`num_bins`
    equal-width bins between its minimum and maximum on the given data),
    and a block's information about factor `v_k` is that of its most
    informative dimension, normalized by the factor's entropy:

    $$M_{bk} = \frac{\max_{d \in b} I(z_d; v_k)}{H(v_k)} \in [0, 1].$$

    The maximum over single dimensions is a lower bound on the block's
    joint information `I(z_b; v_k)` (a histogram of several dimensions
    needs far more samples than a metric gets); it is exact when the block
    stores the factor along one axis. A constant factor (`H = 0`) gets
    `M = 0`. For the per-dimension matrix use `discrete_mutual_info`.

    Args:
        blocks: dict block name (e.g. `"common"`, task names) -> float array
            `(N, D_b)`.
        factors: int array `(N, K)`.
        factor_names: `K` distinct names of the factor columns.
        num_bins: number of histogram bins per code dimension.

    Returns:
        A `BlockMutualInfo` with `matrix` (normalized, `(num_blocks, K)`),
        `mutual_info` (nats), `block_names`, `factor_names` and `entropy`.

    Example:

    >>> import numpy as np
    >>> from kfactor.lab import disentanglement as metrics
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 4, size=(2000, 2))
    >>> blocks = {"common": rng.normal(size=(2000, 3)),
    ...           "shape": factors[:, :1] + 0.01 * rng.normal(size=(2000, 1))}
    >>> result = metrics.block_mutual_info(blocks, factors, ["shape", "x"])
    >>> np.round(result.matrix, 1)
    array([[0., 0.],
           [1., 0.]])

    #### References

    [1]: Ricky T. Q. Chen, Xuechen Li, Roger Grosse, David Duvenaud.
         Isolating Sources of Disentanglement in Variational Autoencoders.
         In _Neural Information Processing Systems_, 2018.
         https://arxiv.org/abs/1802.04942
    [2]: Xingyi Yang, Jingwen Ye, Xinchao Wang. Factorizing Knowledge in
         Neural Networks. In _European Conference on Computer Vision_,
         2022. https://arxiv.org/abs/2207.03337
    """
    factors = _validation.check_labels(factors, "factors")
    names = _validation.check_factor_names(factor_names, factors.shape[1])
    blocks = _validation.check_blocks(blocks, factors, "blocks", "factors")
    entropy = _discrete.discrete_entropy(factors)
    block_names = tuple(blocks)
    mutual_info = np.stack(
        [
            _discrete.discrete_mutual_info(blocks[b], factors, num_bins).max(
                axis=0
            )
            for b in block_names
        ]
    )
    safe = np.where(entropy > 0, entropy, 1.0)
    matrix = np.where(entropy > 0, mutual_info / safe, 0.0)
    return BlockMutualInfo(matrix, mutual_info, block_names, names, entropy)


__all__ = [
    "BlockMutualInfo",
    "block_mutual_info",
]
