"""Procedural dSprites: the official factor grid, rendered on demand.

`ProceduralDSprites` stands in for the official dSprites file (which cannot
be downloaded here): same factors, classes, C-order numbering and
64x64x1 binary images, rendered analytically (see `lab.datasets.render`).
It also implements the ground-truth sampler protocol of
disentanglement_lib used by kfactor's metrics: `factor_sizes`,
`num_factors`, `sample_factors(num, random_state)` and
`sample_observations_from_factors(factors, random_state)`.

Throughput (batch 128, 2 shared CPU cores under a load average of 3-4.5
from other jobs, see `kfactor.data.pipeline`): the `tf.data` pipeline
renders 22,000-62,000 images/s, the NumPy renderer 26,000-49,000 images/s
on one core; a training step consumes 100-400 images/s.
"""

from kfactor.lab.datasets.grid import DSPRITES_FACTOR_SIZES
from kfactor.lab.datasets.grid import DSPRITES_FACTOR_VALUES
from kfactor.lab.datasets.grid import DSPRITES_NUM_IMAGES
from kfactor.lab.datasets.grid import DSPRITES_TASKS
from kfactor.lab.datasets.grid import check_factors
from kfactor.lab.datasets.grid import dsprites_split
from kfactor.lab.datasets.grid import factors_to_index
from kfactor.lab.datasets.grid import index_to_factors
from kfactor.lab.datasets.pipeline import dsprites_dataset
from kfactor.lab.datasets.render import OBSERVATION_SHAPE
from kfactor.lab.datasets.render import render_numpy

import numpy as np


def _draw_ints(random_state, high, size):
    """`random_state.randint` or `.integers`: RandomState or Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state.integers(0, high, size=size)
    if isinstance(random_state, np.random.RandomState):
        return random_state.randint(0, high, size=size)
    raise TypeError(
        "Expected `random_state` as np.random.RandomState or "
        f"np.random.Generator. Received: {type(random_state).__name__}."
    )


class ProceduralDSprites:
    """The dSprites dataset, generated procedurally and lazily.

    Nothing is materialized: images are rendered from factor classes when
    asked for, so the 737,280-image grid costs no memory.

    Args:
        seed: default seed of `split`, `dataset` and of the sampler when
            no `random_state` is passed. Rendering itself is deterministic.

    Example:

    >>> data = ProceduralDSprites(seed=0)
    >>> factors = data.sample_factors(8, np.random.RandomState(0))
    >>> data.sample_observations_from_factors(factors, None).shape
    (8, 64, 64, 1)
    >>> train, test = data.split(1000, 200)
    >>> ds = data.dataset(train, batch_size=64)
    """

    factor_names = DSPRITES_TASKS
    factor_sizes = DSPRITES_FACTOR_SIZES
    num_factors = len(DSPRITES_FACTOR_SIZES)
    observation_shape = OBSERVATION_SHAPE
    num_images = DSPRITES_NUM_IMAGES

    def __init__(self, seed=0):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"Expected an int `seed`. Received: seed={seed!r}.")
        self.seed = int(seed)
        self._random_state = np.random.RandomState(self.seed)

    def __repr__(self):
        return f"ProceduralDSprites(seed={self.seed})"

    @property
    def num_classes(self):
        """Dict `{task name: number of classes}`."""
        return dict(zip(self.factor_names, self.factor_sizes))

    @property
    def factor_values(self):
        """Dict `{task name: float array of the official factor values}`."""
        return {k: v.copy() for k, v in DSPRITES_FACTOR_VALUES.items()}

    def index_to_factors(self, idx):
        """Grid indices -> `(..., 5)` factor classes (official C order).

        Args:
            idx: int array-like of grid indices.

        Returns:
            int64 array of shape `idx.shape + (5,)`.
        """
        return index_to_factors(idx)

    def factors_to_index(self, factors):
        """`(..., 5)` factor classes -> grid indices.

        Args:
            factors: int array-like of shape `(..., 5)`.

        Returns:
            int64 array of shape `factors.shape[:-1]`.
        """
        return factors_to_index(factors)

    def render(self, factors):
        """Renders images of the given factor classes.

        Args:
            factors: int array-like of shape `(N, 5)`.

        Returns:
            float32 array `(N, 64, 64, 1)` with values in `{0, 1}`.
        """
        return render_numpy(factors)

    def sample_factors(self, num, random_state=None):
        """Samples factor classes uniformly over the grid.

        Args:
            num: number of samples.
            random_state: `np.random.RandomState` or `np.random.Generator`;
                defaults to this object's own seeded `RandomState`.

        Returns:
            int64 array of shape `(num, 5)`.
        """
        if random_state is None:
            random_state = self._random_state
        columns = [
            _draw_ints(random_state, size, num) for size in self.factor_sizes
        ]
        factors = np.stack(columns, axis=-1).astype(np.int64)
        return factors.reshape(num, self.num_factors)

    def sample_observations_from_factors(self, factors, random_state=None):
        """Renders the observations of given factors (sampler protocol).

        Args:
            factors: int array of shape `(num, 5)`.
            random_state: unused (rendering is deterministic); kept for the
                disentanglement_lib protocol.

        Returns:
            float32 array of shape `(num, 64, 64, 1)`.
        """
        del random_state
        return render_numpy(check_factors(factors))

    def sample_observations(self, num, random_state=None):
        """Samples `num` observations with uniformly drawn factors.

        Args:
            num: number of samples.
            random_state: as in `sample_factors`.

        Returns:
            float32 array of shape `(num, 64, 64, 1)`.
        """
        return self.sample(num, random_state)[1]

    def sample(self, num, random_state=None):
        """Samples factors and their observations.

        Args:
            num: number of samples.
            random_state: as in `sample_factors`.

        Returns:
            `(factors, observations)`.
        """
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors)

    def split(self, num_train, num_test, seed=None):
        """Disjoint train/test grid indices; see `dsprites_split`.

        Args:
            num_train: number of training indices.
            num_test: number of test indices.
            seed: defaults to `self.seed`.

        Returns:
            `(train_indices, test_indices)`.
        """
        seed = self.seed if seed is None else seed
        return dsprites_split(num_train, num_test, seed=seed)

    def dataset(self, indices, batch_size=128, seed=None, **kwargs):
        """Batched `tf.data.Dataset`; see `dsprites_dataset`.

        Args:
            indices: 1-D int array of grid indices.
            batch_size: images per batch.
            seed: shuffle seed; defaults to `self.seed`.
            **kwargs: `shuffle`, `repeat`, `cache`, `drop_remainder`.

        Returns:
            A `tf.data.Dataset` of `(images, {task: labels})`.
        """
        seed = self.seed if seed is None else seed
        return dsprites_dataset(
            indices, batch_size=batch_size, seed=seed, **kwargs
        )


__all__ = [
    "ProceduralDSprites",
]
