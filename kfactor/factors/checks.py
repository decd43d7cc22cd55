"""Exactness checks of the factor artefact: max |difference| of outputs.

One measure for the three places that compare outputs: `assemble(verify=
True)` (assembled vs recorded or standalone logits), `check_export`
(reloaded serving export vs the in-memory model) and `publish_factors`
(reloaded and assembled vs the in-memory factor networks).
"""

import numpy as np


def max_abs_diff(a, b):
    """The largest absolute elementwise difference of two arrays (float).

    Example:

    >>> max_abs_diff([1.0, 2.0], [1.0, 2.5])
    0.5
    """
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def logit_scale(values):
    """`max(1, max |values|)`: the scale tolerances of logits are taken
    relative to (float32 rounding grows with the logits' size).

    Example:

    >>> logit_scale([[0.5, -3.0]])
    3.0
    """
    return max(1.0, float(np.max(np.abs(np.asarray(values, "float64")))))


def max_abs_diffs(got, expected):
    """`{key: max_abs_diff(got[key], expected[key])}` over `got`'s keys.

    Example:

    >>> max_abs_diffs({"a": [1.0]}, {"a": [0.0], "b": [2.0]})
    {'a': 1.0}
    """
    return {key: max_abs_diff(got[key], expected[key]) for key in got}


def check_within(differences, tolerance, what, fix):
    """Raises `ValueError` naming each key whose difference > `tolerance`.

    Args:
        differences: dict key -> max absolute difference (float).
        tolerance: the largest accepted difference; a dict key ->
            tolerance, or one float for every key.
        what: the two things compared, e.g. "the assembled outputs to
            equal the logits recorded at save time".
        fix: the sentence after "Fix:".

    Returns:
        `differences`, when every one is within its tolerance.
    """
    if not isinstance(tolerance, dict):
        tolerance = dict.fromkeys(differences, tolerance)
    failed = {
        key: diff
        for key, diff in differences.items()
        if not diff <= tolerance[key]  # NaN fails too.
    }
    if failed:
        allowed = {key: tolerance[key] for key in failed}
        raise ValueError(
            f"Expected {what} (max |diff| <= {allowed}). Received: max "
            f"|diff| {failed} for {sorted(failed)}. Fix: {fix}"
        )
    return differences


__all__ = [
    "check_within",
    "logit_scale",
    "max_abs_diff",
    "max_abs_diffs",
]
