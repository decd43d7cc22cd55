"""Code blocks: splitting a concatenated code, and whitening a block.

Block-level measures (`probe_mutual_info`, `block_dci`, `leakage_matrix`)
take a dict `block name -> codes (N, D_b)`. `split_blocks` builds one from a
concatenated code and a block map, checking that the map covers the code;
`whiten` is the per-block transform that makes a linear probe's answer
invariant to rotations of the block.
"""

from kfactor.lab.disentanglement import _validation

import numpy as np


def _block_indices(name, spec, num_dims):
    if isinstance(spec, slice):
        indices = np.arange(num_dims)[spec]
    else:
        indices = np.asarray(spec)
        if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(
                f"Expected block {name!r} to be a slice or a 1-D list of int "
                f"dimension indices. Received: {spec!r}."
            )
    if indices.size == 0:
        raise ValueError(
            f"Block {name!r} has no dimension. Received: {spec!r}."
        )
    if indices.min() < 0 or indices.max() >= num_dims:
        raise ValueError(
            f"Block {name!r} names dimensions outside the code's 0.."
            f"{num_dims - 1}. Received: {spec!r}."
        )
    return indices


def split_blocks(codes, block_map):
    """Splits a concatenated code `(N, D)` into named blocks.

    Args:
        codes: float `(N, D)`.
        block_map: dict block name -> a slice or a list of dimension
            indices. Together the blocks must cover each of the `D`
            dimensions exactly once.

    Returns:
        dict block name -> float `(N, D_b)`.

    Raises:
        ValueError: the map leaves a dimension out, names one twice, or
            names one outside the code; or `codes` is not a finite 2-D array.

    Example:

    >>> codes = np.arange(12.0).reshape(2, 6)
    >>> blocks = split_blocks(codes, {"a": slice(0, 2), "b": [2, 3, 4, 5]})
    >>> blocks["a"].shape, blocks["b"].shape
    ((2, 2), (2, 4))
    """
    codes = _validation.check_codes(codes)
    if not isinstance(block_map, dict) or not block_map:
        raise ValueError(
            "Expected `block_map` to be a non-empty dict block name -> slice "
            f"or dimension indices. Received: {block_map!r:.80}."
        )
    num_dims = codes.shape[1]
    indices = {
        name: _block_indices(name, spec, num_dims)
        for name, spec in block_map.items()
    }
    counts = np.bincount(
        np.concatenate(list(indices.values())), minlength=num_dims
    )
    if np.any(counts > 1):
        raise ValueError(
            "Expected each code dimension in exactly one block. Dimensions "
            f"{np.flatnonzero(counts > 1).tolist()} are in several blocks."
        )
    if np.any(counts == 0):
        raise ValueError(
            f"The block map does not cover the code: dimensions "
            f"{np.flatnonzero(counts == 0).tolist()} of {num_dims} are in no "
            "block. Fix: add them to a block (or drop them from the codes)."
        )
    return {name: codes[:, index] for name, index in indices.items()}


def whitening(train):
    """`(mean, projection)` of PCA whitening fitted on `train` `(N, D)`:
    `(codes - mean) @ projection` has identity train covariance. Directions
    of (near) zero variance are dropped (a block with none left maps to one
    constant zero column)."""
    mean = train.mean(axis=0)
    centered = train - mean
    covariance = centered.T @ centered / max(len(train) - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    keep = values > 1e-10 * max(values.max(), 1e-30)
    if not keep.any():
        return mean, np.zeros((train.shape[1], 1))
    return mean, vectors[:, keep] / np.sqrt(values[keep])


def whiten(train, test):
    """Whitens both with the train mean and covariance (PCA whitening).

    Directions of (near) zero train variance are dropped. For an orthogonal
    `R`, `whiten(train @ R, test @ R)` equals `whiten(train, test)` up to an
    orthogonal transform of the result, which an L2-penalized linear probe
    does not see.
    """
    mean, projection = whitening(train)
    return (train - mean) @ projection, (test - mean) @ projection


__all__ = ["split_blocks", "whiten", "whitening"]
