"""The dSprites factor grid: factor sizes, index <-> factors, seeded splits.

dSprites enumerates every combination of its ground-truth factors exactly
once, in C order over `(shape, scale, orientation, pos_x, pos_y)` (the
official `latents_classes` also has a leading `color` column with one value,
which kfactor drops). Image `i` of the official array therefore has the
factors `np.unravel_index(i, DSPRITES_FACTOR_SIZES)`; the same numbering is
used by the procedural generator, so indices are interchangeable.
"""

import numpy as np

DSPRITES_TASKS = ("shape", "scale", "orientation", "pos_x", "pos_y")
DSPRITES_FACTOR_SIZES = (3, 6, 40, 32, 32)
DSPRITES_NUM_CLASSES = dict(zip(DSPRITES_TASKS, DSPRITES_FACTOR_SIZES))
DSPRITES_NUM_IMAGES = int(np.prod(DSPRITES_FACTOR_SIZES))  # 737,280
DSPRITES_SHAPE_NAMES = ("square", "ellipse", "heart")

# Factor values of the official dataset (`latents_values`, color dropped).
# Orientation holds 40 values from 0 to 2*pi *inclusive*, as in the
# official file: the first and last orientation are the same rotation.
DSPRITES_FACTOR_VALUES = {
    "shape": np.arange(1.0, 4.0),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2.0 * np.pi, 40),
    "pos_x": np.linspace(0.0, 1.0, 32),
    "pos_y": np.linspace(0.0, 1.0, 32),
}

# C-order strides of the grid: index = sum(factors * strides).
DSPRITES_STRIDES = tuple(
    int(np.prod(DSPRITES_FACTOR_SIZES[k + 1 :]))
    for k in range(len(DSPRITES_FACTOR_SIZES))
)


def index_to_factors(indices):
    """Maps grid indices to factor classes, in the official C order.

    Args:
        indices: int array-like of any shape, values in `[0, 737280)`.

    Returns:
        int64 array of shape `indices.shape + (5,)` holding the classes of
        `(shape, scale, orientation, pos_x, pos_y)`.

    Example:

    >>> index_to_factors([0, 1, 737279]).tolist()
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [2, 5, 39, 31, 31]]
    """
    indices = np.asarray(indices)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(
            "Expected integer grid indices. Received: "
            f"dtype={indices.dtype}. Fix: pass ints in [0, "
            f"{DSPRITES_NUM_IMAGES})."
        )
    if indices.size and (
        indices.min() < 0 or indices.max() >= DSPRITES_NUM_IMAGES
    ):
        raise ValueError(
            f"Expected grid indices in [0, {DSPRITES_NUM_IMAGES}). Received: "
            f"min={indices.min()}, max={indices.max()}."
        )
    factors = np.unravel_index(indices.astype(np.int64), DSPRITES_FACTOR_SIZES)
    return np.stack(factors, axis=-1).astype(np.int64)


def factors_to_index(factors):
    """Maps factor classes to grid indices (inverse of `index_to_factors`).

    Args:
        factors: int array-like of shape `(..., 5)`: classes of
            `(shape, scale, orientation, pos_x, pos_y)`.

    Returns:
        int64 array of shape `factors.shape[:-1]`.

    Example:

    >>> int(factors_to_index([2, 5, 39, 31, 31]))
    737279
    """
    factors = check_factors(factors)
    return np.ravel_multi_index(
        tuple(np.moveaxis(factors, -1, 0)), DSPRITES_FACTOR_SIZES
    ).astype(np.int64)


def check_factors(factors):
    """Validates a factor array; returns it as int64.

    Args:
        factors: int array-like of shape `(..., 5)`.

    Returns:
        The factors as an int64 array.

    Example:

    >>> check_factors([[0, 0, 0, 0, 0]]).shape
    (1, 5)
    """
    factors = np.asarray(factors)
    num = len(DSPRITES_FACTOR_SIZES)
    if factors.ndim < 1 or factors.shape[-1] != num:
        raise ValueError(
            f"Expected factors of shape (..., {num}) ordered as "
            f"{DSPRITES_TASKS}. Received: shape={factors.shape}."
        )
    if not np.issubdtype(factors.dtype, np.integer):
        raise TypeError(
            "Expected integer factor classes. Received: "
            f"dtype={factors.dtype}. Fix: pass class indices, not values."
        )
    sizes = np.asarray(DSPRITES_FACTOR_SIZES)
    if factors.size and ((factors < 0).any() or (factors >= sizes).any()):
        bad = np.argwhere((factors < 0) | (factors >= sizes))[0]
        raise ValueError(
            f"Expected factor classes within sizes {DSPRITES_FACTOR_SIZES}. "
            f"Received: factors[{tuple(bad.tolist())}]="
            f"{factors[tuple(bad)]} for factor "
            f"{DSPRITES_TASKS[bad[-1]]!r}."
        )
    return factors.astype(np.int64)


def dsprites_split(num_train, num_test, seed=0):
    """Draws disjoint, seeded train/test subsets of the dSprites grid.

    Args:
        num_train: number of training indices.
        num_test: number of test indices.
        seed: seed of the draw; the same seed gives the same split.

    Returns:
        `(train_indices, test_indices)`: int64 arrays of grid indices with
        no index in common, each in random order, so that any prefix (e.g.
        the first N test images a metric scores) is a uniform random subset.
        (Sorted indices would put the slowest grid factor, shape, in
        blocks: the first third would be all squares.)

    Example:

    >>> train, test = dsprites_split(1000, 200, seed=0)
    >>> len(train), len(test), len(np.intersect1d(train, test))
    (1000, 200, 0)
    """
    for name, value in (("num_train", num_train), ("num_test", num_test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(
                f"Expected an int for `{name}`. Received: {name}={value!r}."
            )
        if value < 0:
            raise ValueError(
                f"Expected `{name}` >= 0. Received: {name}={value}."
            )
    if num_train + num_test > DSPRITES_NUM_IMAGES:
        raise ValueError(
            "Expected num_train + num_test <= "
            f"{DSPRITES_NUM_IMAGES} (the dSprites grid size). Received: "
            f"num_train={num_train}, num_test={num_test}."
        )
    rng = np.random.default_rng(seed)
    drawn = rng.choice(
        DSPRITES_NUM_IMAGES, size=num_train + num_test, replace=False
    ).astype(np.int64)
    return drawn[:num_train], drawn[num_train:]


def indices_outside(excluded, num, seed=0):
    """Draws `num` seeded grid indices that are not in `excluded`.

    The demo's pretrained teacher is trained on such a draw around the
    demo's test split, so that it never sees a held-out image.

    Args:
        excluded: 1-D int array of grid indices to avoid (e.g. a test
            split).
        num: how many indices to draw.
        seed: seed of the draw.

    Returns:
        An int64 array of `num` distinct indices, in random order.

    Example:

    >>> test = dsprites_split(0, 100, seed=0)[1]
    >>> drawn = indices_outside(test, 1000, seed=1)
    >>> len(drawn), len(np.intersect1d(drawn, test))
    (1000, 0)
    """
    excluded = np.unique(np.asarray(excluded, dtype=np.int64))
    available = DSPRITES_NUM_IMAGES - excluded.size
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)):
        raise TypeError(f"Expected an int for `num`. Received: num={num!r}.")
    if not 0 <= num <= available:
        raise ValueError(
            f"Expected 0 <= num <= {available} (the grid less the "
            f"{excluded.size} excluded indices). Received: num={num}."
        )
    pool = np.setdiff1d(
        np.arange(DSPRITES_NUM_IMAGES, dtype=np.int64), excluded
    )
    rng = np.random.default_rng(seed)
    return rng.permutation(pool)[:num]


#: Leakage cells (task code -> factor) that dSprites itself forces: any code
#: good at the row's task carries the column's factor. The reports name
#: them and leave them out of the "non-intrinsic" maximum.
DSPRITES_INTRINSIC_LEAKAGE = {
    ("orientation", "shape"): (
        "orientation labels are only defined up to each shape's rotational "
        "symmetry (square 90 degrees, ellipse 180, heart none), so a code "
        "that predicts the official label must know the shape"
    ),
    ("scale", "shape"): (
        "at a fixed scale the sprite's pixel area depends on its shape, so "
        "a code that reads scale from the image carries shape"
    ),
}


__all__ = [
    "DSPRITES_FACTOR_SIZES",
    "DSPRITES_FACTOR_VALUES",
    "DSPRITES_INTRINSIC_LEAKAGE",
    "DSPRITES_NUM_CLASSES",
    "DSPRITES_NUM_IMAGES",
    "DSPRITES_SHAPE_NAMES",
    "DSPRITES_STRIDES",
    "DSPRITES_TASKS",
    "check_factors",
    "dsprites_split",
    "factors_to_index",
    "index_to_factors",
    "indices_outside",
]
