"""Tests for the sampled metrics (beta-VAE, FactorVAE) and the sampler API."""

from kfactor.lab import disentanglement as metrics

import numpy as np
import pytest

SIZES = dict(num_train=300, num_eval=150, batch_size=16)


class ToySampler:
    """Three factors; observations are the factors themselves."""

    factor_sizes = (4, 3, 5)
    num_factors = 3

    def sample_factors(self, num, random_state):
        return np.stack(
            [random_state.randint(s, size=num) for s in self.factor_sizes],
            axis=1,
        )

    def sample_observations_from_factors(self, factors, random_state):
        return factors.astype(np.float32)


def _identity(observations):
    return observations


def _drop_last_factor(observations):
    """Codes for factors 0 and 1 only, plus a constant dim."""
    codes = np.array(observations, dtype=np.float64)
    codes[:, 2] = 0.0
    return codes


def test_toy_sampler_satisfies_protocol():
    assert isinstance(ToySampler(), metrics.GroundTruthSampler)

    class MissingRender:
        factor_sizes = (2,)
        num_factors = 1

        def sample_factors(self, num, random_state):
            return np.zeros((num, 1), dtype=int)

    assert not isinstance(MissingRender(), metrics.GroundTruthSampler)


def test_beta_vae_score_known_answers():
    perfect = metrics.beta_vae_score(ToySampler(), _identity, **SIZES)
    assert perfect == {"train_accuracy": 1.0, "eval_accuracy": 1.0}
    # A constant code gives identical features for every fixed factor: the
    # classifier can only guess (3 factors, chance about 1/3).
    collapsed = metrics.beta_vae_score(ToySampler(), np.zeros_like, **SIZES)
    assert collapsed["eval_accuracy"] < 0.5
    # The beta-VAE score is lenient: with factor 2 missing from the code, a
    # linear classifier still recognizes "fixed 2" as "neither dim is
    # small", which FactorVAE's majority vote cannot (see below).
    partial = metrics.beta_vae_score(ToySampler(), _drop_last_factor, **SIZES)
    assert partial["eval_accuracy"] > 0.9


def test_factor_vae_score_known_answers():
    perfect = metrics.factor_vae_score(
        ToySampler(), _identity, num_variance_estimate=500, **SIZES
    )
    assert perfect == {
        "train_accuracy": 1.0,
        "eval_accuracy": 1.0,
        "num_active_dims": 3,
    }
    partial = metrics.factor_vae_score(
        ToySampler(), _drop_last_factor, num_variance_estimate=500, **SIZES
    )
    assert partial["num_active_dims"] == 2
    assert partial["eval_accuracy"] < 0.8
    collapsed = metrics.factor_vae_score(
        ToySampler(), np.zeros_like, num_variance_estimate=500, **SIZES
    )
    assert collapsed == {
        "train_accuracy": 0.0,
        "eval_accuracy": 0.0,
        "num_active_dims": 0,
    }


def test_random_state_int_equals_random_state_object():
    noisy = ToySampler()
    noisy.sample_observations_from_factors = lambda f, rs: (
        f + rs.normal(size=f.shape)
    ).astype(np.float32)
    by_int = metrics.beta_vae_score(noisy, _identity, random_state=3, **SIZES)
    by_object = metrics.beta_vae_score(
        noisy, _identity, random_state=np.random.RandomState(3), **SIZES
    )
    assert by_int == by_object


def test_sampled_metrics_bad_input():
    with pytest.raises(ValueError, match="GroundTruthSampler"):
        metrics.beta_vae_score(object(), _identity)
    with pytest.raises(ValueError, match=r"codes of shape \(n, D\)"):
        metrics.factor_vae_score(
            ToySampler(), lambda x: x[:, 0], num_variance_estimate=100
        )
    with pytest.raises(ValueError, match="only finite values"):
        metrics.beta_vae_score(
            ToySampler(), lambda x: np.full(x.shape, np.nan), **SIZES
        )
    with pytest.raises(ValueError, match="batch_size"):
        metrics.factor_vae_score(ToySampler(), _identity, batch_size=1)
    with pytest.raises(ValueError, match="num_train"):
        metrics.beta_vae_score(ToySampler(), _identity, num_train=0)

    class OneFactor(ToySampler):
        factor_sizes = (4,)
        num_factors = 1

    with pytest.raises(ValueError, match="at least 2 factors"):
        metrics.beta_vae_score(OneFactor(), _identity)
