"""The ground-truth sampler interface that the sampled metrics need.

`beta_vae_score` and `factor_vae_score` must draw observations in which one
factor is held fixed, so they take an object that can sample factors and
render observations from given factors. Any class with these four members
satisfies `GroundTruthSampler` (a structural `typing.Protocol`; inheriting
from it is optional). The names and the meaning of `random_state` match
disentanglement_lib's `GroundTruthData`, so the same seed draws the same
samples there and here.
"""

from typing import Protocol
from typing import runtime_checkable

import numpy as np


@runtime_checkable
class GroundTruthSampler(Protocol):
    """A data set whose observations are rendered from discrete factors.

    Factor `k` takes the values `0, ..., factor_sizes[k] - 1`.

    Attributes:
        factor_sizes: tuple of ints, the number of values of each factor.
        num_factors: int, `len(factor_sizes)`.

    Example:

    >>> import numpy as np
    >>> from kfactor.lab import disentanglement as metrics
    >>> class Bars:
    ...     factor_sizes = (4, 3)
    ...     num_factors = 2
    ...     def sample_factors(self, num, random_state):
    ...         return np.stack([random_state.randint(s, size=num)
    ...                          for s in self.factor_sizes], axis=1)
    ...     def sample_observations_from_factors(self, factors,
    ...                                          random_state):
    ...         return factors.astype(np.float32)
    >>> isinstance(Bars(), metrics.GroundTruthSampler)
    True

    #### References

    [1]: Francesco Locatello et al. Challenging Common Assumptions in the
         Unsupervised Learning of Disentangled Representations. In
         _International Conference on Machine Learning_, 2019.
         https://arxiv.org/abs/1811.12359
    """

    @property
    def factor_sizes(self) -> tuple:
        """The number of values of each factor, a tuple of `num_factors`."""
        ...

    @property
    def num_factors(self) -> int:
        """The number of factors `K`."""
        ...

    def sample_factors(
        self, num: int, random_state: np.random.RandomState
    ) -> np.ndarray:
        """Samples `num` factor vectors.

        Args:
            num: number of samples.
            random_state: the `numpy.random.RandomState` to draw from.

        Returns:
            int array `(num, num_factors)`; column `k` in
            `[0, factor_sizes[k])`.
        """
        ...

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> np.ndarray:
        """Renders one observation per row of `factors`.

        Args:
            factors: int array `(num, num_factors)`.
            random_state: the `numpy.random.RandomState` to draw from (for
                data sets whose rendering is random given the factors).

        Returns:
            float32 array `(num, ...)`, e.g. `(num, 64, 64, 1)` images.
        """
        ...


def check_sampler(sampler, minimum_factors=1):
    """Raises unless `sampler` is a `GroundTruthSampler` with enough factors."""
    if not isinstance(sampler, GroundTruthSampler):
        raise ValueError(
            "Expected `sampler` to satisfy "
            "kfactor.lab.disentanglement.GroundTruthSampler "
            "(members factor_sizes, num_factors, sample_factors, "
            "sample_observations_from_factors). Received: "
            f"{type(sampler).__name__}."
        )
    if sampler.num_factors < minimum_factors:
        raise ValueError(
            f"Expected a sampler with at least {minimum_factors} factors. "
            f"Received: sampler.num_factors={sampler.num_factors}."
        )


def as_random_state(random_state):
    """An int seed or None as `np.random.RandomState`; a RandomState as is."""
    if isinstance(random_state, np.random.RandomState):
        return random_state
    return np.random.RandomState(random_state)


__all__ = [
    "GroundTruthSampler",
    "as_random_state",
    "check_sampler",
]
