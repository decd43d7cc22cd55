"""Helpers of the sampled metrics: argument checks, grouped encoding."""

from kfactor.metrics import _validation
from kfactor.metrics import sampler as sampler_lib

import numpy as np

# Training points whose observations go through one representation call.
POINTS_PER_CALL = 16


def check_sampler(sampler, minimum_factors=1):
    """Raises unless `sampler` is a `GroundTruthSampler` with enough factors."""
    if not isinstance(sampler, sampler_lib.GroundTruthSampler):
        raise ValueError(
            "Expected `sampler` to satisfy kfactor.metrics.GroundTruthSampler "
            "(members factor_sizes, num_factors, sample_factors, "
            "sample_observations_from_factors). Received: "
            f"{type(sampler).__name__}."
        )
    if sampler.num_factors < minimum_factors:
        raise ValueError(
            f"Expected a sampler with at least {minimum_factors} factors. "
            f"Received: sampler.num_factors={sampler.num_factors}."
        )


def check_positive(minimum, **values):
    """Raises unless every keyword value is an int >= `minimum`."""
    for name, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < minimum
        ):
            raise ValueError(
                f"Expected `{name}` to be an int >= {minimum}. Received: "
                f"{name}={value!r}."
            )


def as_random_state(random_state):
    """An int seed or None as `np.random.RandomState`; a RandomState as is."""
    if isinstance(random_state, np.random.RandomState):
        return random_state
    return np.random.RandomState(random_state)


def represent(representation_fn, observations):
    """Calls `representation_fn` and checks it returns finite `(n, D)`."""
    codes = np.asarray(representation_fn(observations))
    if codes.ndim != 2 or codes.shape[0] != observations.shape[0]:
        raise ValueError(
            "Expected `representation_fn` to map observations of shape "
            "(n, ...) to codes of shape (n, D). Received: codes of shape "
            f"{codes.shape} for observations of shape {observations.shape}."
        )
    return _validation.check_codes(codes, "representation_fn(observations)")


def grouped_codes(representation_fn, num_points, draw_point):
    """Draws `num_points` points, encoding them in groups.

    `draw_point()` draws one point's observations (a list of arrays of
    equal length) and returns `(label, observations)`. Yields
    `(labels, codes)` per group, `codes` shaped
    `(points, arrays_per_point, batch, D)`.
    """
    for start in range(0, num_points, POINTS_PER_CALL):
        stop = min(start + POINTS_PER_CALL, num_points)
        labels, observations = [], []
        for _ in range(start, stop):
            label, point_observations = draw_point()
            labels.append(label)
            observations.extend(point_observations)
        per_point = len(observations) // (stop - start)
        batch = observations[0].shape[0]
        codes = represent(representation_fn, np.concatenate(observations))
        yield (
            np.asarray(labels, dtype=np.int64),
            codes.reshape(stop - start, per_point, batch, codes.shape[1]),
        )
