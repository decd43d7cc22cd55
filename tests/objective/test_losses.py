"""Each loss term against an independent NumPy computation."""

import doctest

from kfactor.layers.factor_layers import TaskCode
from kfactor.objective import cross_task
from kfactor.objective import divergences
from kfactor.objective import imb
from kfactor.objective import losses
from kfactor.objective import transfer
from kfactor.objective.imb import imb_objective

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special

RNG = np.random.default_rng(0)
CLASSES = {"a": 3, "b": 5}
B = 16


def random_outputs(variational=True):
    f32 = lambda *s: RNG.normal(size=s).astype("float32")  # noqa: E731
    codes = {
        t: TaskCode(f32(B, 4), f32(B, 4), f32(B, 4) if variational else None)
        for t in CLASSES
    }
    return losses.FactorOutputs(
        teacher_logits={t: f32(B, k) for t, k in CLASSES.items()},
        teacher_features=[f32(B, 4), f32(B, 6)],
        common_features=[f32(B, 4), f32(B, 6)],
        common_code=f32(B, 4),
        task_codes=codes,
        logits={t: f32(B, k) for t, k in CLASSES.items()},
        aux_logits={t: f32(B, k) for t, k in CLASSES.items()},
    )


LABELS = {t: RNG.integers(0, k, B).astype("int32") for t, k in CLASSES.items()}


def np_log_softmax(x):
    return x - special.logsumexp(x, axis=-1, keepdims=True)


def np_smoothed_ce(labels, logits, eps):
    k = logits.shape[-1]
    target = np.eye(k)[labels] * (1 - eps) + eps / k
    return -(target * np_log_softmax(logits)).sum(-1).mean()


def np_info_nce(teacher, common, temperature):
    """InfoNCE of the cosine critic: mean_i[s_ii - logsumexp_j s_ij] + log B."""
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    scores = unit(teacher) @ unit(common).T / temperature
    joint = np.mean(np.diag(scores))
    return joint - np.mean(special.logsumexp(scores, axis=-1)) + np.log(B)


def test_infomax_is_mean_negative_bound_over_levels():
    out = random_outputs()
    loss = losses.InfoMaxLoss(estimator="infonce", temperature=0.5)
    expected = -np.mean(
        [
            np_info_nce(t.astype("float64"), c.astype("float64"), 0.5)
            for t, c in zip(out.teacher_features, out.common_features)
        ]
    )
    np.testing.assert_allclose(
        float(loss.compute_loss(out, LABELS)), expected, rtol=1e-5
    )


def test_infomax_dv_matches_numpy_reference_loss():
    out = random_outputs()
    t, c = out.teacher_features[0], out.common_features[0]
    tn = t / (np.linalg.norm(t, axis=1, keepdims=True) + 1e-10)
    cn = c / (np.linalg.norm(c, axis=1, keepdims=True) + 1e-10)
    s = tn @ cn.T
    eye = np.eye(B)
    expected = -((s * eye).mean() - np.log(np.exp(s * (1 - eye)).mean()))
    single = out._replace(teacher_features=[t], common_features=[c])
    np.testing.assert_allclose(
        float(
            losses.InfoMaxLoss(estimator="dv", temperature=1.0).compute_loss(
                single, LABELS
            )
        ),
        expected,
        rtol=1e-5,
    )


def test_infomin_vib_is_per_sample_kl_summed_over_tasks():
    out = random_outputs()
    expected = sum(
        np.mean(-0.5 * np.sum(1 + c.log_var - c.mean**2 - np.exp(c.log_var), 1))
        for c in out.task_codes.values()
    )
    got = float(losses.InfoMinLoss(mode="vib").compute_loss(out, LABELS))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    auto = float(losses.InfoMinLoss().compute_loss(out, LABELS))
    np.testing.assert_allclose(auto, expected, rtol=1e-5)


def test_infomin_batch_moments_is_the_reference_1d_branch():
    out = random_outputs(variational=False)
    expected = 0.0
    for code in out.task_codes.values():
        mu = code.mean.mean(0)
        var = code.mean.var(0, ddof=1)  # torch.var is unbiased
        expected += -0.5 * np.mean(1 + np.log(var) - mu**2 - var)
    for mode in ("auto", "batch_moments"):
        got = float(losses.InfoMinLoss(mode=mode).compute_loss(out, LABELS))
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_batch_moments_of_standard_normal_codes_is_small():
    """Method reference sanity value: 0.0079 for N(0, 1), B=128, D=512."""
    codes = RNG.standard_normal((128, 512)).astype("float32")
    assert float(divergences.batch_moment_kl(codes)) == pytest.approx(
        0.0079, abs=2e-3
    )
    assert float(divergences.batch_moment_kl(3 * codes)) == pytest.approx(
        2.95, abs=0.1
    )


def test_logits_kd_is_one_mse_over_concatenated_logits():
    out = random_outputs()
    s = np.concatenate([out.logits[t] for t in CLASSES], 1)
    t = np.concatenate([out.teacher_logits[t] for t in CLASSES], 1)
    got = float(losses.LogitsKD().compute_loss(out, LABELS))
    np.testing.assert_allclose(got, np.mean((s - t) ** 2), rtol=1e-5)


def test_soft_target_kd_is_t_squared_kl():
    out = random_outputs()
    temp = 3.0
    expected = 0.0
    for task in CLASSES:
        log_pt = np_log_softmax(out.teacher_logits[task] / temp)
        log_ps = np_log_softmax(out.logits[task] / temp)
        expected += np.mean(np.sum(np.exp(log_pt) * (log_pt - log_ps), 1))
    got = float(losses.SoftTargetKD(temperature=temp).compute_loss(out, LABELS))
    np.testing.assert_allclose(got, temp**2 * expected, rtol=1e-4)


@pytest.mark.parametrize(
    "cls,field",
    [(losses.TaskLoss, "logits"), (losses.AuxTaskLoss, "aux_logits")],
)
def test_cross_entropies_match_numpy_with_reference_smoothing(cls, field):
    out = random_outputs()
    logits = getattr(out, field)
    eps = 0.1 / 1.1
    expected = sum(np_smoothed_ce(LABELS[t], logits[t], eps) for t in CLASSES)
    got = float(cls().compute_loss(out, LABELS))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    plain = sum(np_smoothed_ce(LABELS[t], logits[t], 0.0) for t in CLASSES)
    got = float(cls(label_smoothing=0.0).compute_loss(out, LABELS))
    np.testing.assert_allclose(got, plain, rtol=1e-5)


def test_default_objective_is_the_reference_dsprites_config_plus_a_hint():
    objective = {loss.name: loss for loss in imb_objective()}
    assert sorted(objective) == [
        "adversary",
        "aux",
        "cls",
        "hint",
        "infomax",
        "infomin",
        "kd",
    ]
    assert objective["adversary"].weight == 3.0
    assert objective["adversary"].mode == "confusion"
    # From a random start, the hint is what moves the teacher's knowledge.
    assert objective["hint"].weight == 10.0
    assert objective["infomax"].weight == 1.0
    # Not the reference's "dv" formula: it rewards a collapsed common code.
    assert objective["infomax"].estimator == "infonce"
    assert objective["infomax"].temperature == 0.1
    assert objective["infomin"].weight == 1e-3
    assert isinstance(objective["kd"], losses.LogitsKD)
    assert objective["kd"].weight == 0.1
    assert objective["cls"].weight == objective["aux"].weight == 1.0
    assert objective["cls"].label_smoothing == pytest.approx(0.1 / 1.1)


def test_total_is_the_weighted_sum_of_terms():
    out = random_outputs()
    objective = imb_objective(
        beta=0.5,
        kd="soft_target",
        kd_weight=2.0,
        hint_weight=0.0,
        adversary_weight=0.0,
    )
    total, terms = losses.total_loss(objective, out, LABELS)
    expected = {
        f"{loss.name}_loss": loss.weight * float(loss.compute_loss(out, LABELS))
        for loss in objective
    }
    assert sorted(terms) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(float(terms[name]), value, rtol=1e-5)
    np.testing.assert_allclose(float(total), sum(expected.values()), rtol=1e-5)


@pytest.mark.parametrize(
    "loss",
    [
        losses.InfoMaxLoss(0.5, estimator="nwj", temperature=0.2),
        losses.InfoMinLoss(0.01, mode="batch_moments"),
        losses.LogitsKD(0.3),
        losses.SoftTargetKD(0.2, temperature=2.0),
        losses.TaskLoss(0.7, label_smoothing=0.0),
        losses.AuxTaskLoss(0.1),
    ],
)
def test_losses_serialize(loss):
    config = keras.saving.serialize_keras_object(loss)
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(loss)
    assert clone.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: losses.InfoMaxLoss(estimator="mine"), "Unknown mutual"),
        (lambda: losses.InfoMaxLoss(temperature=0), "temperature > 0"),
        (lambda: losses.InfoMinLoss(mode="sum"), "Expected mode"),
        (lambda: losses.TaskLoss(label_smoothing=1.5), "label_smoothing"),
        (lambda: losses.LogitsKD(weight=-1), "non-negative"),
        (lambda: imb_objective(kd="hinton"), "Expected kd"),
    ],
)
def test_bad_options_raise_clear_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_docstring_examples_run():
    results = doctest.testmod(imb)
    assert results.attempted >= 1 and results.failed == 0


def factor_loss_classes():
    modules = (losses, cross_task, transfer)
    return sorted(
        {
            value
            for module in modules
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, losses.FactorLoss)
        },
        key=lambda cls: cls.__name__,
    )


@pytest.mark.parametrize(
    "method", ["make_layers", "compute_loss", "update_state"]
)
def test_every_terms_methods_convert_under_autograph(method):
    # A user's own `tf.function` (autograph on) converts the terms' methods;
    # a body of only a docstring once failed to parse there.
    classes = factor_loss_classes()
    assert len(classes) >= 8
    for cls in classes:
        tf.autograph.to_graph(getattr(cls, method))
