"""lab.disentanglement against disentanglement_lib's numbers on the same arrays.

The expected constants below are the outputs of disentanglement_lib 1.5
(`pip install --no-deps disentanglement-lib==1.5` into a throwaway venv),
recorded once; disentanglement_lib is not a test dependency. Procedure:

1. The reference metric modules import `gin.tf` only for
   `@gin.configurable` and `gin.REQUIRED`; a stub module `gin` (decorator
   that returns the function unchanged) was put in `sys.modules` so that
   neither gin's TensorFlow bindings nor TensorFlow 1 are needed. The study
   configuration was set by hand: `utils.make_discretizer` =
   `_histogram_discretize(target, 20)` and `factor_vae._prune_dims` =
   `sqrt(variances) >= 0.05`.
2. The arrays of `_arrays(seed)` (below, same code) were transposed to the
   reference's `(D, N)` convention and passed to `mig._compute_mig`,
   `sap_score._compute_sap(..., continuous_factors=False)` and
   `dci._compute_dci` (after `np.random.seed(0)`: its boosted trees draw
   from numpy's global RNG); modularity/explicitness ran through
   `compute_modularity_explicitness` with a ground-truth object replaying
   the same train then test rows, batch size 16, and the identity
   representation.
3. `beta_vae.compute_beta_vae_sklearn` and `factor_vae.compute_factor_vae`
   ran on `ToySampler` (below, plus the reference-only `sample` and
   `sample_observations` methods built from the same two calls) with
   `random_state=np.random.RandomState(0)` and the arguments in the tests.

Versions: Python 3.11, numpy 2.4.6, scikit-learn 1.9.1 for both libraries.
The script and its full output are in `docs/metrics_reference_check.md`.
The classifier-based numbers (SAP, DCI, explicitness, beta-VAE) depend on
scikit-learn's solvers; if a scikit-learn upgrade moves them, rerun that
procedure rather than loosening the tolerances.
"""

from kfactor.lab import disentanglement as metrics

import numpy as np
import pytest

# disentanglement_lib 1.5 outputs, keyed by the seed of `_arrays`.
REFERENCE = {
    0: {
        "mig": 0.31437709932888896,
        "sap": 0.17666666666666664,
        "dci": {
            "completeness": 0.5825331539759756,
            "disentanglement": 0.5763786030122449,
            "informativeness_test": 0.9626666666666667,
            "informativeness_train": 0.9996666666666667,
        },
        "modularity_explicitness": {
            "modularity": 0.8122667826683857,
            "explicitness_train": 0.997641293901983,
            "explicitness_test": 0.9979643437183187,
        },
    },
    1: {
        "mig": 0.33025396420301245,
        "sap": 0.19399999999999998,
        "dci": {
            "completeness": 0.6198461814125107,
            "disentanglement": 0.5923799833749948,
            "informativeness_test": 0.9593333333333334,
            "informativeness_train": 0.9993333333333334,
        },
        "modularity_explicitness": {
            "modularity": 0.8677653085278729,
            "explicitness_train": 0.9982487559590107,
            "explicitness_test": 0.9965482764600281,
        },
    },
}
REFERENCE_BETA_VAE = {"train_accuracy": 0.8185, "eval_accuracy": 0.797}
REFERENCE_FACTOR_VAE = {"train_accuracy": 0.7475, "eval_accuracy": 0.719}
SAMPLED_ARGS = dict(num_train=2000, num_eval=1000, batch_size=8)


def _arrays(seed, n_train=1000, n_test=500):
    """Samples-first codes (N, 5) and factors (N, 3), partly disentangled."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    factors = np.stack([rng.integers(0, s, n) for s in (3, 5, 4)], axis=1)
    a, b = factors[:, 1] / 4.0, factors[:, 2] / 3.0
    codes = np.stack(
        [
            factors[:, 0] + 0.3 * rng.normal(size=n),
            np.cos(0.5) * a + np.sin(0.5) * b + 0.05 * rng.normal(size=n),
            -np.sin(0.5) * a + np.cos(0.5) * b + 0.05 * rng.normal(size=n),
            rng.normal(size=n),
            factors[:, 2] + 0.5 * factors[:, 0] + 0.5 * rng.normal(size=n),
        ],
        axis=1,
    )
    return (
        codes[:n_train],
        factors[:n_train],
        codes[n_train:],
        factors[n_train:],
    )


class ToySampler:
    """Factors (4, 3, 5); observations = factors + N(0, 0.5^2) noise."""

    factor_sizes = (4, 3, 5)
    num_factors = 3

    def sample_factors(self, num, random_state):
        return np.stack(
            [random_state.randint(s, size=num) for s in self.factor_sizes],
            axis=1,
        )

    def sample_observations_from_factors(self, factors, random_state):
        noise = 0.5 * random_state.normal(size=factors.shape)
        return (factors + noise).astype(np.float32)


MIXING = np.array(
    [
        [1.0, 0.7, 0.3, 0.5, 0.0],
        [0.0, 1.0, 0.8, 0.5, 0.0],
        [0.6, 0.0, 1.0, 0.5, 0.0],
    ]
)


def _representation(observations):
    """Linear, per-sample codes (n, 5); the last dimension is constant."""
    return observations.astype(np.float64) @ MIXING


@pytest.mark.parametrize("seed", [0, 1])
def test_mig_matches_reference(seed):
    codes_train, factors_train, _, _ = _arrays(seed)
    assert metrics.mig(codes_train, factors_train) == pytest.approx(
        REFERENCE[seed]["mig"], rel=1e-12
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_sap_matches_reference(seed):
    assert metrics.sap(*_arrays(seed)) == pytest.approx(
        REFERENCE[seed]["sap"], abs=1e-9
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_modularity_explicitness_matches_reference(seed):
    scores = metrics.modularity_explicitness(*_arrays(seed))
    assert scores == pytest.approx(
        REFERENCE[seed]["modularity_explicitness"], abs=1e-9
    )


def test_dci_matches_reference():
    # The same RNG stream as the reference's seeded global RNG, consumed
    # factor after factor; an int seed gives slightly different trees.
    scores = metrics.dci(*_arrays(0), random_state=np.random.RandomState(0))
    assert scores == pytest.approx(REFERENCE[0]["dci"], abs=1e-9)


def test_beta_vae_score_matches_reference():
    scores = metrics.beta_vae_score(
        ToySampler(), _representation, random_state=0, **SAMPLED_ARGS
    )
    assert scores == pytest.approx(REFERENCE_BETA_VAE, abs=1e-12)


def test_factor_vae_score_matches_reference():
    scores = metrics.factor_vae_score(
        ToySampler(),
        _representation,
        random_state=0,
        num_variance_estimate=2000,
        **SAMPLED_ARGS,
    )
    # The reference reports num_active_dims=5 (the length of its boolean
    # mask); 4 of the 5 dimensions are active (the last is constant).
    assert scores.pop("num_active_dims") == 4
    assert scores == pytest.approx(REFERENCE_FACTOR_VAE, abs=1e-12)
