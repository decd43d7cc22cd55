"""Block-level measures on constructed codes with known answers.

Five task-pure 10-d blocks (block k holds factor k and noise, nothing
else): zero leakage by construction. Per-dimension scores (MIG, SAP) see
that only when each factor sits on one axis; rotate each block, or copy the
factor onto two axes, and they fall towards 0 although nothing leaks. The
block-level measures (probe leakage, the probe MI bound, block DCI) give
the same answer in all three cases.
"""

from kfactor.lab import disentanglement as metrics

import numpy as np
import pytest
from scipy.stats import special_ortho_group

NUM_FACTORS = 5
NUM_VALUES = 4
BLOCK_DIM = 10
NAMES = [f"v{k}" for k in range(NUM_FACTORS)]


def _factors(num=3000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, NUM_VALUES, size=(num, NUM_FACTORS))


def _pure_blocks(factors, layout, seed=1):
    """Block k: factor k on axis 0 (and axis 1 if redundant), noise on the
    other axes; `layout="rotated"` then rotates each block at random."""
    rng = np.random.default_rng(seed)
    blocks = {}
    for k, name in enumerate(NAMES):
        block = rng.normal(size=(len(factors), BLOCK_DIM))
        value = factors[:, k] + 0.05 * rng.normal(size=len(factors))
        block[:, 0] = value
        if layout == "redundant":
            block[:, 1] = factors[:, k] + 0.05 * rng.normal(size=len(factors))
        if layout == "rotated":
            block = block @ special_ortho_group.rvs(BLOCK_DIM, random_state=k)
        blocks[name] = block
    return blocks


def _split(blocks, factors, cut=2000):
    return (
        {b: v[:cut] for b, v in blocks.items()},
        factors[:cut],
        {b: v[cut:] for b, v in blocks.items()},
        factors[cut:],
    )


def _concatenated(blocks):
    return np.concatenate([blocks[b] for b in NAMES], axis=1)


@pytest.fixture(scope="module")
def cases():
    factors = _factors()
    return {
        layout: (_pure_blocks(factors, layout), factors)
        for layout in ("axis", "rotated", "redundant")
    }


def test_mig_and_sap_need_axis_aligned_codes(cases):
    scores = {}
    for layout, (blocks, factors) in cases.items():
        train, f_train, test, f_test = _split(blocks, factors)
        codes_train, codes_test = _concatenated(train), _concatenated(test)
        scores[layout] = (
            metrics.mig(codes_train, f_train),
            metrics.sap(codes_train, f_train, codes_test, f_test),
        )
    # Axis-aligned: high (SAP's 1-d linear SVMs read 4 ordered values only
    # partly: about 0.47). Rotated or redundant: low, with zero leakage.
    (axis_mig, axis_sap) = scores["axis"]
    assert axis_mig > 0.9 and axis_sap > 0.3, scores
    for layout in ("rotated", "redundant"):
        mig, sap = scores[layout]
        assert mig < 0.15 * axis_mig and sap < 0.15 * axis_sap, scores


def test_block_measures_see_pure_blocks_in_every_layout(cases):
    for layout, (blocks, factors) in cases.items():
        split = _split(blocks, factors)
        leakage = metrics.leakage_matrix(*split, NAMES)
        assert leakage.max_offdiag_above_chance < 0.05, layout
        np.testing.assert_array_less(0.95, np.diag(leakage.matrix))
        mi = metrics.probe_mutual_info(*split, NAMES)
        np.testing.assert_allclose(np.diag(mi.matrix), mi.entropy, atol=0.1)
        off = mi.matrix[~np.eye(NUM_FACTORS, dtype=bool)]
        assert np.max(np.abs(off)) < 0.03, layout
        dci = metrics.block_dci(*split, NAMES)
        assert dci["disentanglement"] > 0.9, (layout, dci)
        assert dci["completeness"] > 0.9, (layout, dci)
        assert dci["informativeness_test"] > 0.95, (layout, dci)


def test_block_dci_and_probe_mi_are_rotation_invariant(cases):
    axis = _split(*cases["axis"])
    rotated = _split(*cases["rotated"])
    a, b = metrics.block_dci(*axis, NAMES), metrics.block_dci(*rotated, NAMES)
    for key in ("disentanglement", "completeness", "informativeness_test"):
        assert a[key] == pytest.approx(b[key], abs=0.01), key
    np.testing.assert_allclose(
        metrics.probe_mutual_info(*axis, NAMES).matrix,
        metrics.probe_mutual_info(*rotated, NAMES).matrix,
        atol=0.02,
    )


def test_a_block_that_holds_two_factors_lowers_block_dci(cases):
    blocks, factors = cases["axis"]
    mixed = dict(blocks)
    # v0's block also carries v1: v1 is now read from two blocks.
    mixed["v0"] = np.concatenate([blocks["v0"], blocks["v1"][:, :1]], axis=1)
    pure = metrics.block_dci(*_split(blocks, factors), NAMES)
    leaky = metrics.block_dci(*_split(mixed, factors), NAMES)
    assert leaky["disentanglement"] < pure["disentanglement"] - 0.05
    assert leaky["completeness"] < pure["completeness"] - 0.05


def test_pure_noise_informs_nothing():
    factors = _factors()
    rng = np.random.default_rng(3)
    noise = {b: rng.normal(size=(len(factors), BLOCK_DIM)) for b in NAMES}
    dci = metrics.block_dci(*_split(noise, factors), NAMES)
    assert dci["informativeness_test"] < 1.0 / NUM_VALUES + 0.06
    mi = metrics.probe_mutual_info(*_split(noise, factors), NAMES)
    assert np.max(mi.matrix) < 0.03


def test_gbt_importance_matches_the_linear_answer_on_pure_blocks(cases):
    blocks, factors = cases["axis"]
    small = {b: v[:, :3] for b, v in blocks.items()}
    dci = metrics.block_dci(
        *_split(small, factors),
        NAMES,
        importance="gbt",
        max_train_samples=500,
    )
    assert dci["disentanglement"] > 0.8
    assert dci["completeness"] > 0.8


def test_split_blocks_checks_that_the_map_covers_the_code():
    codes = np.zeros((4, 6))
    blocks = metrics.split_blocks(codes, {"a": slice(0, 2), "b": [2, 3, 4, 5]})
    assert blocks["a"].shape == (4, 2) and blocks["b"].shape == (4, 4)
    with pytest.raises(ValueError, match="does not cover the code.*5"):
        metrics.split_blocks(codes, {"a": slice(0, 2), "b": [2, 3, 4]})
    with pytest.raises(ValueError, match="in several blocks"):
        metrics.split_blocks(codes, {"a": slice(0, 3), "b": [2, 3, 4, 5]})
    with pytest.raises(ValueError, match="outside"):
        metrics.split_blocks(codes, {"a": slice(0, 6), "b": [6]})
    with pytest.raises(ValueError, match="finite"):
        metrics.split_blocks(np.full((4, 6), np.nan), {"a": slice(0, 6)})


def test_block_dci_bad_input_is_one_clear_error(cases):
    blocks, factors = cases["axis"]
    train, f_train, test, f_test = _split(blocks, factors)
    with pytest.raises(ValueError, match="importance"):
        metrics.block_dci(train, f_train, test, f_test, NAMES, importance="x")
    nan = dict(train, v0=np.full_like(train["v0"], np.nan))
    with pytest.raises(ValueError, match="finite"):
        metrics.block_dci(nan, f_train, test, f_test, NAMES)
    with pytest.raises(ValueError, match="samples|same number"):
        metrics.block_dci(train, f_train[:10], test, f_test, NAMES)
