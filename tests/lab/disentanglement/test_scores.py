"""Tests for lab.disentanglement: known answers on constructed codes, bad input.

Constructed cases use small N so the file runs in seconds. "Perfect" codes
store each factor on its own dimension (plus tiny noise), "noise" codes are
independent of the factors, and "rotated" codes mix two factors by 45
degrees, so every code dimension carries both.
"""

import kfactor.lab.disentanglement
from kfactor.lab import disentanglement as metrics
from kfactor.lab.disentanglement import _discrete

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

N_TRAIN = 600
N_TEST = 300


def _split(codes, factors):
    return (
        codes[:N_TRAIN],
        factors[:N_TRAIN],
        codes[N_TRAIN:],
        factors[N_TRAIN:],
    )


def _factors(num_values=2, num_factors=2, seed=0):
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    return rng.integers(0, num_values, size=(n, num_factors))


def _perfect(factors, seed=1):
    rng = np.random.default_rng(seed)
    return factors + 0.05 * rng.normal(size=factors.shape)


def _noise(factors, seed=1):
    return np.random.default_rng(seed).normal(size=factors.shape)


def _rotated(factors, seed=1):
    """45-degree rotation of two factors: each dim holds both equally."""
    rng = np.random.default_rng(seed)
    a, b = factors[:, 0], factors[:, 1]
    codes = np.stack([a + b, a - b], axis=1) / np.sqrt(2.0)
    return codes + 0.05 * rng.normal(size=codes.shape)


# === Public surface ===


def test_public_api_is_sorted_and_importable():
    assert kfactor.lab.disentanglement.__all__ == sorted(
        kfactor.lab.disentanglement.__all__
    )
    for name in kfactor.lab.disentanglement.__all__:
        assert hasattr(metrics, name), name


# === Discretization and discrete MI ===


def test_histogram_discretize_matches_numpy_histogram():
    codes = np.random.default_rng(0).normal(size=(500, 3))
    binned = _discrete.histogram_discretize(codes, num_bins=7)
    assert binned.min() == 0 and binned.max() == 6
    for d in range(3):
        counts, _ = np.histogram(codes[:, d], bins=7)
        np.testing.assert_array_equal(
            np.bincount(binned[:, d], minlength=7), counts
        )


def test_discrete_mutual_info_matches_sklearn():
    factors = _factors(num_values=3, num_factors=2)
    codes = _rotated(factors)
    mi = metrics.discrete_mutual_info(codes, factors, num_bins=20)
    binned = _discrete.histogram_discretize(codes, num_bins=20)
    assert mi.shape == (2, 2)
    for d in range(2):
        for k in range(2):
            expected = sk_metrics.mutual_info_score(factors[:, k], binned[:, d])
            np.testing.assert_allclose(mi[d, k], expected, atol=1e-12)


def test_discrete_entropy_of_balanced_factor_is_log_num_values():
    factors = np.tile(np.arange(4), 25)[:, np.newaxis]
    np.testing.assert_allclose(
        _discrete.discrete_entropy(factors), [np.log(4.0)]
    )


# === MIG ===


def test_mig_known_answers():
    factors = _factors(num_values=4)
    assert metrics.mig(_perfect(factors), factors) > 0.95
    assert metrics.mig(_noise(factors), factors) < 0.05
    assert metrics.mig(_rotated(factors), factors) < 0.1
    duplicated = np.concatenate([_perfect(factors)] * 2, axis=1)
    assert metrics.mig(duplicated, factors) < 0.05


def test_mig_is_invariant_to_permuting_and_scaling_code_dims():
    factors = _factors(num_values=4)
    codes = _perfect(factors) + 0.3 * _noise(factors)
    moved = 3.0 * codes[:, ::-1] - 7.0
    assert metrics.mig(moved, factors) == pytest.approx(
        metrics.mig(codes, factors), abs=1e-12
    )


# === SAP ===


def test_sap_known_answers():
    # A useless code dimension still scores the balanced chance accuracy,
    # so a perfect code of binary factors scores about 1 - 1/2 = 0.5.
    factors = _factors(num_values=2)
    perfect = metrics.sap(*_split(_perfect(factors), factors))
    assert 0.4 < perfect <= 0.5 + 1e-9
    assert metrics.sap(*_split(_noise(factors), factors)) < 0.05
    assert metrics.sap(*_split(_rotated(factors), factors)) < 0.1


# === DCI ===


def test_dci_known_answers():
    factors = _factors(num_values=2)
    perfect = metrics.dci(*_split(_perfect(factors), factors))
    assert perfect["disentanglement"] > 0.99
    assert perfect["completeness"] > 0.99
    assert perfect["informativeness_test"] > 0.99
    noise = metrics.dci(*_split(_noise(factors), factors))
    assert noise["disentanglement"] < 0.1
    assert noise["informativeness_test"] < 0.65
    rotated = metrics.dci(*_split(_rotated(factors), factors))
    assert rotated["disentanglement"] < 0.1
    assert rotated["informativeness_test"] > 0.95


def test_dci_subsamples_to_max_train_samples():
    factors = _factors(num_values=2)
    args = _split(_perfect(factors) + 0.5 * _noise(factors), factors)
    full = metrics.dci(*args, max_train_samples=None)
    assert metrics.dci(*args, max_train_samples=N_TRAIN) == full
    assert metrics.dci(*args, max_train_samples=100) != full
    with pytest.raises(ValueError, match="max_train_samples"):
        metrics.dci(*args, max_train_samples=0)


def test_dci_single_factor_has_disentanglement_one():
    factors = _factors(num_values=2, num_factors=1)
    codes = np.concatenate([_perfect(factors), _noise(factors)], axis=1)
    scores = metrics.dci(*_split(codes, factors))
    assert scores["disentanglement"] == 1.0
    assert scores["completeness"] > 0.8


# === Modularity and explicitness ===


def test_modularity_explicitness_known_answers():
    factors = _factors(num_values=3)
    perfect = metrics.modularity_explicitness(
        *_split(_perfect(factors), factors)
    )
    assert perfect["modularity"] > 0.99
    assert perfect["explicitness_test"] > 0.99
    rotated = metrics.modularity_explicitness(
        *_split(_rotated(factors), factors)
    )
    assert rotated["modularity"] < 0.1
    # Noise codes: no factor is predictable (AUC = 0.5). Their modularity is
    # not near 0: each noise dim's tiny plug-in MI favours some factor.
    noise = metrics.modularity_explicitness(*_split(_noise(factors), factors))
    assert 0.4 < noise["explicitness_test"] < 0.6


def test_modularity_is_defined_for_one_factor_and_constant_code_dims():
    factors = _factors(num_values=3, num_factors=1)
    codes = np.concatenate([_perfect(factors), np.ones_like(factors)], 1)
    scores = metrics.modularity_explicitness(*_split(codes, factors))
    # The informative dim scores 1; the constant one has zero MI: 0.
    assert scores["modularity"] == pytest.approx(0.5)
    assert scores["explicitness_test"] > 0.99


def test_explicitness_handles_test_set_missing_a_class():
    factors = _factors(num_values=3)
    codes = _perfect(factors)
    keep = factors[:, 0] != 2
    keep[:N_TRAIN] = True
    scores = metrics.modularity_explicitness(
        *_split(codes[keep], factors[keep])
    )
    assert scores["explicitness_test"] > 0.99


def test_explicitness_raises_on_factor_constant_in_test_only():
    factors = _factors(num_values=3)
    codes_train, factors_train, codes_test, factors_test = _split(
        _perfect(factors), factors
    )
    factors_test = factors_test.copy()
    factors_test[:, 1] = 0
    with pytest.raises(ValueError, match="factor 1 of factors_test"):
        metrics.modularity_explicitness(
            codes_train, factors_train, codes_test, factors_test
        )


# === Bad input, shared by every array metric ===


def _call_mig(codes, factors):
    return metrics.mig(codes, factors)


def _call_train_test(metric):
    def call(codes, factors):
        return metric(codes, factors, codes, factors)

    return call


ARRAY_METRICS = {
    "mig": _call_mig,
    "sap": _call_train_test(metrics.sap),
    "dci": _call_train_test(metrics.dci),
    "modularity": _call_train_test(metrics.modularity_explicitness),
}


def test_mismatched_samples_error_says_what_and_shapes():
    with pytest.raises(ValueError) as error:
        metrics.mig(np.zeros((100, 5)), np.zeros((90, 2), dtype=int))
    assert str(error.value) == (
        "Expected codes and factors to have the same number of samples. "
        "Received: codes.shape=(100, 5), factors.shape=(90, 2)."
    )


@pytest.mark.parametrize("name", sorted(ARRAY_METRICS))
def test_bad_input_raises(name):
    call = ARRAY_METRICS[name]
    factors = _factors(num_values=2)[:200]
    codes = _perfect(factors)
    with pytest.raises(ValueError, match="same number of samples"):
        call(codes[:150], factors)
    with pytest.raises(ValueError, match="integer class labels"):
        call(codes, factors + 0.5)
    with pytest.raises(ValueError, match="integer class labels"):
        call(codes, factors.astype(str))
    nan_codes = codes.copy()
    nan_codes[3, 1] = np.nan
    with pytest.raises(ValueError, match="only finite values"):
        call(nan_codes, factors)
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        call(codes[:, 0], factors)
    with pytest.raises(ValueError, match="every factor constant"):
        call(codes, np.zeros_like(factors))


@pytest.mark.parametrize("name", sorted(ARRAY_METRICS))
def test_constant_factor_is_excluded(name):
    call = ARRAY_METRICS[name]
    factors = _factors(num_values=2)[:300]
    codes = _perfect(factors) + 0.3 * _noise(factors)
    with_constant = np.concatenate([factors, np.full((300, 1), 4)], axis=1)
    assert call(codes, with_constant) == call(codes, factors)


def test_whole_valued_float_factors_are_accepted():
    factors = _factors(num_values=4)
    codes = _perfect(factors)
    assert metrics.mig(codes, factors.astype(np.float32)) == metrics.mig(
        codes, factors
    )


def test_mig_and_sap_need_two_code_dims():
    factors = _factors(num_values=2, num_factors=1)
    codes = _perfect(factors)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        metrics.mig(codes, factors)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        metrics.sap(*_split(codes, factors))


def test_train_test_dimension_mismatch_raises():
    factors = _factors(num_values=2)
    codes_train, factors_train, codes_test, factors_test = _split(
        _perfect(factors), factors
    )
    with pytest.raises(ValueError, match="same number of code dimensions"):
        metrics.sap(codes_train, factors_train, codes_test[:, :1], factors_test)
    with pytest.raises(ValueError, match="same number of factors"):
        metrics.dci(codes_train, factors_train, codes_test, factors_test[:, :1])
