"""Tests for the factor-level probes: linear probe, leakage, block MI."""

import doctest

from kfactor.lab import disentanglement as metrics
from kfactor.lab.disentanglement import probes

import numpy as np
import pytest

N_TRAIN = 600
N_TEST = 300
NAMES = ["shape", "size", "pos"]


def _factors(seed=0):
    rng = np.random.default_rng(seed)
    sizes = (3, 2, 4)
    n = N_TRAIN + N_TEST
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def _blocks(factors, leak=None, seed=1):
    """One 2-dim block per factor: its factor plus noise, nothing else.

    `leak=(block, factor)` adds `factor`'s value to `block`'s second dim.
    """
    rng = np.random.default_rng(seed)
    n = factors.shape[0]
    blocks = {}
    for k, name in enumerate(NAMES):
        codes = np.stack([factors[:, k], np.zeros(n)], axis=1)
        blocks[name] = codes + 0.1 * rng.normal(size=(n, 2))
    if leak is not None:
        block, factor = leak
        blocks[block][:, 1] += factors[:, NAMES.index(factor)]
    return blocks


def _split(blocks, factors):
    train = {name: codes[:N_TRAIN] for name, codes in blocks.items()}
    test = {name: codes[N_TRAIN:] for name, codes in blocks.items()}
    return train, factors[:N_TRAIN], test, factors[N_TRAIN:]


# === linear_probe ===


def test_linear_probe_reads_its_factor_and_not_noise():
    factors = _factors()
    rng = np.random.default_rng(2)
    codes = factors[:, :1] + 0.1 * rng.normal(size=(N_TRAIN + N_TEST, 1))
    result = metrics.linear_probe(
        codes[:N_TRAIN],
        factors[:N_TRAIN, 0],
        codes[N_TRAIN:],
        factors[N_TRAIN:, 0],
    )
    assert isinstance(result, metrics.ProbeResult)
    assert result.accuracy == 1.0
    _, counts = np.unique(factors[N_TRAIN:, 0], return_counts=True)
    assert result.chance == counts.max() / N_TEST
    noise = rng.normal(size=(N_TRAIN + N_TEST, 4))
    accuracy, chance = metrics.linear_probe(
        noise[:N_TRAIN],
        factors[:N_TRAIN, 0],
        noise[N_TRAIN:],
        factors[N_TRAIN:, 0],
    )
    assert abs(accuracy - chance) < 0.08


def test_linear_probe_constant_train_labels_predicts_that_label():
    codes = np.random.default_rng(0).normal(size=(50, 2))
    labels_test = np.array([1] * 30 + [0] * 20)
    result = metrics.linear_probe(
        codes, np.ones(50, dtype=int), codes, labels_test
    )
    assert result == (0.6, 0.6)


def test_linear_probe_bad_input():
    codes = np.zeros((20, 2))
    labels = np.arange(20) % 2
    with pytest.raises(ValueError, match="same number of samples"):
        metrics.linear_probe(codes, labels[:10], codes, labels)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        metrics.linear_probe(codes, labels[:, None], codes, labels)
    with pytest.raises(ValueError, match="integer class labels"):
        metrics.linear_probe(codes, labels + 0.5, codes, labels)
    with pytest.raises(ValueError, match="same number of code dimensions"):
        metrics.linear_probe(codes, labels, codes[:, :1], labels)
    bad = codes.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="only finite values"):
        metrics.linear_probe(codes, labels, bad, labels)


# === leakage_matrix ===


def test_leakage_matrix_disentangled_blocks_sit_at_chance():
    factors = _factors()
    result = metrics.leakage_matrix(*_split(_blocks(factors), factors), NAMES)
    assert isinstance(result, metrics.LeakageResult)
    assert result.matrix.shape == (3, 3)
    assert result.block_names == tuple(NAMES)
    assert result.factor_names == tuple(NAMES)
    np.testing.assert_allclose(np.diag(result.matrix), 1.0)
    for k in range(3):
        _, counts = np.unique(factors[N_TRAIN:, k], return_counts=True)
        assert result.chance[k] == counts.max() / N_TEST
    assert result.max_offdiag_above_chance < 0.05
    assert np.all(np.abs(result.above_chance[result.offdiag_mask]) < 0.08)


def test_leakage_matrix_detects_a_leaking_block():
    factors = _factors()
    blocks = _blocks(factors, leak=("size", "pos"))
    result = metrics.leakage_matrix(*_split(blocks, factors), NAMES)
    row, column = NAMES.index("size"), NAMES.index("pos")
    assert result.matrix[row, column] > 0.9
    assert result.max_offdiag_above_chance == pytest.approx(
        result.matrix[row, column] - result.chance[column]
    )
    assert result.max_offdiag_above_chance > 0.5


def test_leakage_matrix_common_block_and_no_offdiag_cells():
    factors = _factors()
    blocks = _blocks(factors)
    common = np.random.default_rng(5).normal(size=(N_TRAIN + N_TEST, 3))
    result = metrics.leakage_matrix(
        *_split({"common": common, **blocks}, factors), NAMES
    )
    assert result.block_names == ("common", *NAMES)
    assert result.offdiag_mask[0].all()
    single = metrics.leakage_matrix(
        *_split({"shape": blocks["shape"]}, factors[:, :1]), ["shape"]
    )
    assert np.isnan(single.max_offdiag_above_chance)


def test_leakage_matrix_bad_input():
    factors = _factors()
    train, factors_train, test, factors_test = _split(_blocks(factors), factors)
    with pytest.raises(ValueError, match="3 distinct factor names"):
        metrics.leakage_matrix(
            train, factors_train, test, factors_test, NAMES[:2]
        )
    with pytest.raises(ValueError, match="3 distinct factor names"):
        metrics.leakage_matrix(
            train, factors_train, test, factors_test, ["a", "a", "b"]
        )
    with pytest.raises(ValueError, match="same block names"):
        metrics.leakage_matrix(
            train, factors_train, {"shape": test["shape"]}, factors_test, NAMES
        )
    with pytest.raises(ValueError, match="non-empty dict"):
        metrics.leakage_matrix({}, factors_train, test, factors_test, NAMES)
    short = dict(train, size=train["size"][:10])
    with pytest.raises(
        ValueError, match=r"blocks_train\['size'\] and factors_train"
    ):
        metrics.leakage_matrix(short, factors_train, test, factors_test, NAMES)


# === block_mutual_info and discrete_mutual_info ===


def test_block_mutual_info_diagonal_and_leak():
    factors = _factors()
    blocks = _blocks(factors, leak=("size", "pos"))
    blocks["common"] = np.random.default_rng(5).normal(size=(900, 4))
    result = metrics.block_mutual_info(blocks, factors, NAMES)
    assert isinstance(result, metrics.BlockMutualInfo)
    assert result.block_names == (*NAMES, "common")
    assert result.matrix.shape == (4, 3)
    np.testing.assert_allclose(np.diag(result.matrix[:3]), 1.0, atol=0.02)
    assert result.matrix[NAMES.index("size"), NAMES.index("pos")] > 0.9
    assert result.matrix[NAMES.index("shape"), NAMES.index("pos")] < 0.05
    assert np.all(result.matrix[3] < 0.05)
    # Normalized = max over the block's dims of the per-dim MI / entropy.
    per_dim = metrics.discrete_mutual_info(blocks["size"], factors)
    np.testing.assert_allclose(
        result.mutual_info[NAMES.index("size")], per_dim.max(axis=0)
    )
    np.testing.assert_allclose(
        result.matrix, result.mutual_info / result.entropy
    )


def test_block_mutual_info_constant_factor_scores_zero():
    factors = _factors()
    factors[:, 2] = 1
    result = metrics.block_mutual_info(_blocks(factors), factors, NAMES)
    assert result.entropy[2] == 0.0
    np.testing.assert_array_equal(result.matrix[:, 2], 0.0)


def test_block_mutual_info_bad_input():
    factors = _factors()
    blocks = _blocks(factors)
    with pytest.raises(ValueError, match="same number of samples"):
        metrics.block_mutual_info(blocks, factors[:10], NAMES)
    with pytest.raises(ValueError, match="num_bins"):
        metrics.block_mutual_info(blocks, factors, NAMES, num_bins=0)


def faint_and_loud_codes(num, seed):
    """A 3-D code: `loud` at amplitude 1, `faint` at 0.01, and a noise
    dimension in between; labels `loud` and `faint` (2 values each)."""
    rng = np.random.default_rng(seed)
    loud, faint = rng.integers(0, 2, (2, num))
    codes = np.stack(
        [
            loud + 0.1 * rng.normal(size=num),
            0.3 * rng.normal(size=num),
            0.01 * faint + 0.001 * rng.normal(size=num),
        ],
        axis=1,
    )
    return codes, {"loud": loud, "faint": faint}


def test_principal_subspace_probe_finds_the_faint_direction():
    train, labels_train = faint_and_loud_codes(2000, seed=0)
    test, labels_test = faint_and_loud_codes(1000, seed=1)
    faint = metrics.principal_subspace_probe(
        train, labels_train["faint"], test, labels_test["faint"], 2
    )
    # The top two components (loud + noise) hold ~all the variance and
    # nothing of `faint`; the whitened rest reads it perfectly, as the
    # whole-code probe does.
    assert faint.variance_share > 0.999
    assert faint.top < faint.chance + 0.05
    assert faint.rest > 0.99
    whole = metrics.linear_probe(
        train, labels_train["faint"], test, labels_test["faint"]
    )
    assert whole.accuracy > 0.99
    loud = metrics.principal_subspace_probe(
        train, labels_train["loud"], test, labels_test["loud"], 1
    )
    assert loud.top > 0.99 and loud.rest < loud.chance + 0.05
    # var(loud) 0.25 + 0.1**2 against the noise dimension's 0.3**2.
    assert loud.variance_share == pytest.approx(0.26 / 0.35, abs=0.03)


@pytest.mark.parametrize("num_components", [0, 3, 1.5])
def test_principal_subspace_probe_needs_a_top_and_a_rest(num_components):
    codes, labels = faint_and_loud_codes(50, seed=0)
    with pytest.raises(ValueError, match=r"num_components in \[1, 2\]"):
        metrics.principal_subspace_probe(
            codes, labels["loud"], codes, labels["loud"], num_components
        )


def test_docstring_examples_run():
    results = doctest.testmod(probes)
    assert results.attempted >= 5 and results.failed == 0
