"""Health of a factorization: collapse measures and estimators."""

import doctest

import kfactor
from kfactor.objective import health
from kfactor.objective import losses
from kfactor.objective import mi
from kfactor.objective.imb import imb_objective

import numpy as np
import pytest

from tests import fixtures

B, D = 64, 10


def synthetic_pairs(seed=0):
    """(projected teacher, common) feature pairs of known information."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, D)).astype("float32")
    y = rng.normal(size=(B, D)).astype("float32")
    c = np.repeat(rng.normal(size=(1, D)), B, axis=0).astype("float32")
    return {
        "identical": (x, x),
        "independent": (x, y),
        "collapsed": (c, c),
        "anti_aligned_collapse": (-c, c),
    }


def infomax_loss(estimator, teacher, common, temperature):
    outputs = losses.FactorOutputs(
        teacher_logits={},
        teacher_features=[teacher],
        common_features=[common],
        common_code=common,
        task_codes={},
        logits={},
        aux_logits={},
    )
    loss = losses.InfoMaxLoss(estimator=estimator, temperature=temperature)
    return float(loss.compute_loss(outputs, {}))


def test_reference_dv_formula_is_minimised_by_an_anti_aligned_collapse():
    scores = {
        k: infomax_loss("dv", *pair, temperature=1.0)
        for k, pair in synthetic_pairs().items()
    }
    # The numbers (B=64, D=10): the constant common code wins.
    assert scores["anti_aligned_collapse"] == pytest.approx(-0.958, abs=0.01)
    assert scores["anti_aligned_collapse"] < scores["identical"]
    assert scores["identical"] < scores["independent"] < scores["collapsed"]


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_default_infonce_is_minimised_by_information_not_collapse(
    temperature,
):
    scores = {
        k: infomax_loss("infonce", *pair, temperature=temperature)
        for k, pair in synthetic_pairs().items()
    }
    # Information is the optimum, near -log B (the InfoNCE ceiling) ...
    assert scores["identical"] == min(scores.values())
    assert scores["identical"] < -0.8 * np.log(B) * min(1, 0.2 / temperature)
    # ... and every collapse scores exactly zero information, far above it.
    assert scores["collapsed"] == pytest.approx(0.0, abs=1e-5)
    assert scores["anti_aligned_collapse"] == pytest.approx(0.0, abs=1e-5)
    # Independent features carry no information either: InfoNCE scores
    # them at zero plus Jensen's finite-batch gap (E log-mean-exp >= mean),
    # so never below a collapse.
    assert scores["independent"] >= scores["collapsed"]


def test_default_objective_uses_infonce_with_a_temperature():
    infomax = imb_objective()[0]
    assert (infomax.name, infomax.estimator) == ("infomax", "infonce")
    assert infomax.temperature == 0.1
    assert "dv" in mi.ESTIMATORS  # the reference formula, by name


def test_collapse_measures_on_known_codes():
    rng = np.random.default_rng(0)
    isotropic = rng.normal(size=(2000, 10)).astype("float32")
    line = np.outer(rng.normal(size=2000), rng.normal(size=10)) + 5.0
    constant = np.ones((50, 10), "float32") * 3.0
    assert float(health.mean_pairwise_cosine(isotropic)) == pytest.approx(
        0.0, abs=0.01
    )
    assert float(health.participation_ratio(isotropic)) == pytest.approx(
        10.0, rel=0.05
    )
    assert float(health.participation_ratio(line)) == pytest.approx(1.0, 1e-3)
    assert float(health.mean_pairwise_cosine(constant)) == pytest.approx(1.0)
    assert float(health.participation_ratio(constant)) == 0.0
    # Mean pairwise cosine against a NumPy twin on a small batch.
    small = rng.normal(size=(7, 3)) + 0.5
    unit = small / np.linalg.norm(small, axis=1, keepdims=True)
    cos = unit @ unit.T
    twin = (cos.sum() - np.trace(cos)) / (7 * 6)
    assert float(health.mean_pairwise_cosine(small)) == pytest.approx(
        twin, abs=1e-5
    )


def test_task_code_kl_of_variational_and_deterministic_codes():
    mean = np.zeros((8, 4), "float32")
    code = kfactor.layers.TaskCode(mean, mean, np.zeros((8, 4), "float32"))
    assert float(health.task_code_kl(code)) == pytest.approx(0.0, abs=1e-6)
    narrow = kfactor.layers.TaskCode(
        mean, mean, np.full((8, 4), -6.0, "float32")
    )
    # 0.5 * (e^-6 + 6 - 1) a dimension, 4 dimensions.
    expected = 4 * 0.5 * (np.exp(-6.0) + 6.0 - 1.0)
    assert float(health.task_code_kl(narrow)) == pytest.approx(expected, 1e-4)
    wide = 3.0 * np.random.default_rng(0).normal(size=(256, 4))
    deterministic = kfactor.layers.TaskCode(wide, wide, None)
    assert float(health.task_code_kl(deterministic)) > 1.0


def test_factorizer_logs_health_of_every_code():
    factorizer = fixtures.tiny_factorizer()
    factorizer.compile()
    logs = factorizer.fit(fixtures.blob_dataset(64), verbose=0).history
    for key in ("common_cosine", "common_participation_ratio"):
        assert np.isfinite(logs[key][0])
    for task in fixtures.TINY_TASKS:
        assert logs[f"{task}_kl"][0] > 0.0


def test_docstring_examples_run():
    results = doctest.testmod(health, extraglobs={"np": np})
    assert results.attempted >= 2 and results.failed == 0
