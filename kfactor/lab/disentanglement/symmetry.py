r"""Orientation accuracy up to each dSprites shape's rotational symmetry.

dSprites' 40 orientation labels are the angles `i * 2 pi / 39`, i = 0..39,
so label 0 and label 39 are the same rotation, and a square (symmetric under
90 degrees) or an ellipse (180 degrees) looks the same at several labels. The
official labels stay the training targets; this measure only *scores* a
prediction as correct when the predicted angle renders the same sprite as the
true one up to the shape's symmetry, i.e. when the two angles differ by a
multiple of the symmetry period within half a grid step:

$$\mathrm{correct}(\hat\imath, i) = \big|\,((\theta_{\hat\imath} - \theta_i
    + P/2) \bmod P) - P/2\,\big| \le \tfrac12 \cdot \tfrac{2\pi}{39}.$$

A 90-degree turn is 9.75 grid steps, so a square's symmetric partner is the
nearest grid angle (i + 10: 0.25 step off); a 180-degree turn is 19.5 steps,
so an ellipse has two partners half a step off (i + 19 and i + 20), both
counted. The heart has no symmetry: only its own label (and the 0 / 2 pi
duplicate) is correct.
"""

import numpy as np

#: Rotational symmetry period of each dSprites shape class (square,
#: ellipse, heart), in radians.
SHAPE_SYMMETRY_PERIODS = (np.pi / 2.0, np.pi, 2.0 * np.pi)
#: The grid step of the 40 orientation labels on [0, 2 pi].
ORIENTATION_STEP = 2.0 * np.pi / 39.0


def _as_labels(values, name):
    array = np.asarray(values)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"Expected {name} as a 1-D integer array of class labels. "
            f"Received: dtype={array.dtype}, shape={array.shape}."
        )
    return array.astype(np.int64)


def symmetric_orientation_matches(predicted, true, shapes):
    """Per example: does the predicted orientation render the same sprite?

    Args:
        predicted: int `(N,)` predicted orientation labels (0..39).
        true: int `(N,)` true orientation labels.
        shapes: int `(N,)` shape labels (0 square, 1 ellipse, 2 heart).

    Returns:
        Boolean `(N,)`.

    Example:

    >>> symmetric_orientation_matches([10, 10, 0], [0, 0, 39], [0, 2, 2])
    array([ True, False,  True])
    """
    predicted = _as_labels(predicted, "predicted")
    true = _as_labels(true, "true")
    shapes = _as_labels(shapes, "shapes")
    if not predicted.shape == true.shape == shapes.shape:
        raise ValueError(
            "Expected predicted, true and shapes of one length. Received: "
            f"{predicted.shape}, {true.shape}, {shapes.shape}."
        )
    for name, labels, high in (
        ("predicted", predicted, 40),
        ("true", true, 40),
        ("shapes", shapes, len(SHAPE_SYMMETRY_PERIODS)),
    ):
        if labels.size and (labels.min() < 0 or labels.max() >= high):
            raise ValueError(
                f"Expected {name} labels in [0, {high - 1}]. Received: "
                f"min {labels.min()}, max {labels.max()}."
            )
    period = np.asarray(SHAPE_SYMMETRY_PERIODS)[shapes]
    difference = (predicted - true) * ORIENTATION_STEP
    folded = np.mod(difference + period / 2.0, period) - period / 2.0
    return np.abs(folded) <= ORIENTATION_STEP / 2.0 + 1e-9


def symmetric_orientation_accuracy(predicted, true, shapes):
    """The share of orientation predictions correct up to symmetry.

    See `symmetric_orientation_matches`. Example:

    >>> symmetric_orientation_accuracy([10, 3], [0, 3], [0, 2])
    1.0
    """
    matches = symmetric_orientation_matches(predicted, true, shapes)
    return float(np.mean(matches)) if matches.size else float("nan")


__all__ = [
    "ORIENTATION_STEP",
    "SHAPE_SYMMETRY_PERIODS",
    "symmetric_orientation_accuracy",
    "symmetric_orientation_matches",
]
