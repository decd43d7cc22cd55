"""MI bounds: Gaussian ground truth, NumPy twins, reference sanity values."""

import doctest

from kfactor.objective import mi

import numpy as np
import pytest
import tensorflow as tf
from scipy import special


def correlated_gaussian_scores(rho, dim, batch, seed=0):
    """Optimal critic log p(y|x) - log p(y) for x, y with correlation rho."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, dim))
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((batch, dim))
    var = 1 - rho**2
    # scores[i, j] = log N(y_j; rho x_i, var) - log N(y_j; 0, 1)
    diff = y[None, :, :] - rho * x[:, None, :]
    log_cond = -0.5 * (diff**2 / var + np.log(2 * np.pi * var)).sum(-1)
    log_marg = -0.5 * (y**2 + np.log(2 * np.pi)).sum(-1)[None, :]
    return (log_cond - log_marg).astype("float32")


def true_mi(rho, dim):
    return -0.5 * np.log(1 - rho**2) * dim


@pytest.mark.parametrize("rho,dim", [(0.5, 2), (0.8, 1), (0.9, 2)])
def test_info_nce_and_nwj_recover_gaussian_mi(rho, dim):
    scores = correlated_gaussian_scores(rho, dim, batch=1000)
    truth = true_mi(rho, dim)
    info_nce = float(mi.info_nce(scores))
    nwj = float(mi.nguyen_wainwright_jordan(scores + 1.0))
    # InfoNCE is below the truth and below log(batch); NWJ is unbiased with
    # the optimal critic + 1; both within 0.1 nat at batch 1000.
    assert info_nce <= min(truth, np.log(1000)) + 0.05
    assert info_nce == pytest.approx(truth, abs=0.1)
    assert nwj == pytest.approx(truth, abs=0.1)


def test_bounds_grow_with_dependence():
    for bound in mi.ESTIMATORS.values():
        weak = float(bound(correlated_gaussian_scores(0.2, 2, 300)))
        strong = float(bound(correlated_gaussian_scores(0.9, 2, 300)))
        assert strong > weak, bound.__name__


def numpy_info_nce(s):
    b = s.shape[0]
    return np.mean(np.diag(s) - special.logsumexp(s, axis=1)) + np.log(b)


def numpy_nwj(s):
    b = s.shape[0]
    off = ~np.eye(b, dtype=bool)
    return np.mean(np.diag(s)) - np.exp(-1) * np.mean(np.exp(s[off]))


def numpy_jensen_shannon(s):
    b = s.shape[0]
    off = ~np.eye(b, dtype=bool)
    softplus = lambda v: np.logaddexp(0, v)  # noqa: E731
    return -np.mean(softplus(-np.diag(s))) - np.mean(softplus(s[off]))


def numpy_dv_reference(s):
    b = s.shape[0]
    eye = np.eye(b)
    return (s * eye).sum() / b**2 - np.log(np.exp(s * (1 - eye)).mean())


@pytest.mark.parametrize(
    "name,twin",
    [
        ("infonce", numpy_info_nce),
        ("nwj", numpy_nwj),
        ("jsd", numpy_jensen_shannon),
        ("dv", numpy_dv_reference),
    ],
)
def test_estimators_match_numpy(name, twin):
    scores = np.random.default_rng(1).normal(size=(17, 17)).astype("float32")
    bound = mi.get_estimator(name)
    np.testing.assert_allclose(float(bound(scores)), twin(scores), rtol=1e-5)
    # An explicit identity mask is the default.
    mask = tf.eye(17, dtype=tf.bool)
    np.testing.assert_allclose(
        float(bound(scores, joint_sample_mask=mask)), twin(scores), rtol=1e-5
    )


def cosine_numpy(a, b):
    a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-10)
    b = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-10)
    return a @ b.T


def reference_infomax_loss(a, b):
    return -float(mi.donsker_varadhan_reference(mi.cosine_scores(a, b)))


def test_dv_reference_sanity_values_from_method_reference():
    """The table of kf-method.md section 2.2a (B = 128)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 128)).astype("float32")
    b = rng.standard_normal((128, 128)).astype("float32")
    wide = rng.standard_normal((128, 512)).astype("float32")
    assert reference_infomax_loss(a, b) == pytest.approx(0.0036, abs=1e-3)
    # Identical features: the table's -0.0044 / -0.0075 to 1e-3 (the exact
    # value moves with the sample's mean off-diagonal cosine).
    assert reference_infomax_loss(a, a) == pytest.approx(-0.0044, abs=1e-3)
    assert reference_infomax_loss(wide, wide) == pytest.approx(
        -0.0075, abs=1e-3
    )
    eye = np.eye(128, dtype="float32")
    assert reference_infomax_loss(eye, eye) == pytest.approx(-0.0078, abs=1e-4)
    ones = np.ones((128, 8), "float32")
    assert reference_infomax_loss(ones, ones) == pytest.approx(0.987, abs=1e-3)


def test_cosine_scores_match_numpy_and_temperature():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 9, 5)).astype("float32")
    np.testing.assert_allclose(
        mi.cosine_scores(a, b, temperature=0.5),
        cosine_numpy(a, b) / 0.5,
        rtol=1e-5,
        atol=1e-6,
    )


def test_unknown_estimator_names_the_choices():
    with pytest.raises(ValueError, match="infonce"):
        mi.get_estimator("mine")


@pytest.mark.parametrize("name", sorted(mi.ESTIMATORS))
def test_estimators_work_with_an_unknown_batch_size(name):
    """Inside Keras's traced train step the batch size is not static."""
    bound = tf.function(
        mi.get_estimator(name),
        input_signature=[tf.TensorSpec([None, None], tf.float32)],
    )
    scores = np.random.default_rng(3).normal(size=(9, 9)).astype("float32")
    np.testing.assert_allclose(
        float(bound(scores)), float(mi.get_estimator(name)(scores)), rtol=1e-5
    )


def test_docstring_examples_run():
    results = doctest.testmod(mi, extraglobs={"tf": tf})
    assert results.attempted >= 5 and results.failed == 0
