"""The probe MI lower bound: known answers, rotation invariance, bad input."""

from kfactor.lab import disentanglement as metrics

import numpy as np
import pytest
from scipy.stats import special_ortho_group


def blocks_of_factors(num=3000, seed=0):
    """Two 4-d blocks, each holding one 4-valued factor (and noise)."""
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, 4, size=(num, 2))
    eye = np.eye(4)
    blocks = {
        name: 3.0 * eye[factors[:, k]] + 0.3 * rng.normal(size=(num, 4))
        for k, name in enumerate(("a", "b"))
    }
    return blocks, factors


def split(blocks, factors, cut=2000):
    train = {k: v[:cut] for k, v in blocks.items()}
    test = {k: v[cut:] for k, v in blocks.items()}
    return train, factors[:cut], test, factors[cut:]


def test_each_block_carries_its_own_factor_and_nothing_else():
    result = metrics.probe_mutual_info(
        *split(*blocks_of_factors()), factor_names=["a", "b"]
    )
    entropy = np.log(4.0)
    np.testing.assert_allclose(result.entropy, entropy, atol=0.01)
    # Determined: the bound reaches H(v); independent: about 0.
    assert result.matrix[0, 0] == pytest.approx(entropy, abs=0.05)
    assert result.matrix[1, 1] == pytest.approx(entropy, abs=0.05)
    assert abs(result.matrix[0, 1]) < 0.02
    assert abs(result.matrix[1, 0]) < 0.02


def test_the_bound_is_invariant_to_rotating_a_block():
    blocks, factors = blocks_of_factors()
    rotation = special_ortho_group.rvs(4, random_state=1)
    rotated = {k: v @ rotation for k, v in blocks.items()}
    plain = metrics.probe_mutual_info(
        *split(blocks, factors), factor_names=["a", "b"]
    )
    turned = metrics.probe_mutual_info(
        *split(rotated, factors), factor_names=["a", "b"]
    )
    np.testing.assert_allclose(turned.matrix, plain.matrix, atol=1e-3)
    # The per-dimension maximum of block_mutual_info is not invariant.
    per_dim = metrics.block_mutual_info(
        {k: v[:2000] for k, v in blocks.items()}, factors[:2000], ["a", "b"]
    ).matrix
    per_dim_rotated = metrics.block_mutual_info(
        {k: v[:2000] for k, v in rotated.items()}, factors[:2000], ["a", "b"]
    ).matrix
    assert np.max(np.abs(per_dim - per_dim_rotated)) > 0.05


def test_pure_noise_scores_about_zero_and_constant_blocks_zero():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 5, size=(2500, 1))
    noise = {"n": rng.normal(size=(2500, 8)), "c": np.ones((2500, 3))}
    result = metrics.probe_mutual_info(
        {k: v[:2000] for k, v in noise.items()},
        factors[:2000],
        {k: v[2000:] for k, v in noise.items()},
        factors[2000:],
        ["v"],
    )
    assert abs(result.matrix[0, 0]) < 0.03
    assert result.matrix[1, 0] == pytest.approx(0.0, abs=0.01)


def test_bad_input_is_one_clear_error():
    blocks, factors = blocks_of_factors(200)
    train, f_train, test, f_test = split(blocks, factors, 150)
    with pytest.raises(ValueError, match="same block names"):
        metrics.probe_mutual_info(
            train, f_train, {"a": test["a"]}, f_test, ["a", "b"]
        )
    with pytest.raises(ValueError, match="distinct factor names"):
        metrics.probe_mutual_info(train, f_train, test, f_test, ["a"])
    nan = {k: v.copy() for k, v in train.items()}
    nan["a"][0, 0] = np.nan
    with pytest.raises(ValueError):
        metrics.probe_mutual_info(nan, f_train, test, f_test, ["a", "b"])
