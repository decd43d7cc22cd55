"""The knowledge-moving InfoMax terms: hint, memory-queue bound, queue."""

import doctest

from kfactor.objective import losses
from kfactor.objective import mi
from kfactor.objective import transfer
from kfactor.objective.imb import imb_objective

import keras
import numpy as np
import pytest
from scipy import special

from tests import fixtures


def outputs_of(teacher, common):
    return losses.FactorOutputs(
        teacher_logits={},
        teacher_features=[],
        common_features=[common],
        common_code=common,
        task_codes={},
        logits={},
        aux_logits={},
        teacher_raw_features=[teacher],
    )


def correlated_features(num=256, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    teacher = rng.normal(3.0, 2.0, (num, dim)).astype("float32")
    return teacher, rng


# === HintLoss ===


def test_hint_is_zero_at_its_optimum():
    teacher, _ = correlated_features()
    mixing = np.array(
        [[2.0, 0, 0, 1], [0, -1, 0, 0], [0, 0, 3, 0], [1, 0, 0, 1]]
    )
    common = (teacher @ mixing.astype("float32")) + 5.0
    outputs = outputs_of(teacher, common)
    hint = transfer.HintLoss()
    hint.build(outputs)
    hint.update_state(outputs)
    regressor, standardizer = hint.layers
    # The optimum: W c + b = (t - mean) / std exactly.
    inverse = np.linalg.inv(mixing)
    scale = 1.0 / np.sqrt(np.asarray(standardizer.variance) + 1e-5)
    mean = np.asarray(standardizer.mean)
    regressor.kernel.assign(inverse * scale)
    regressor.bias.assign((-5.0 * inverse.sum(0) - mean) * scale)
    assert float(hint.compute_loss(outputs, {})) < 1e-8


def test_hint_of_an_unrelated_common_feature_is_one_per_dimension():
    teacher, rng = correlated_features(num=4096)
    unrelated = rng.normal(size=teacher.shape).astype("float32")
    outputs = outputs_of(teacher, unrelated)
    hint = transfer.HintLoss()
    hint.build(outputs)
    hint.update_state(outputs)
    hint.layers[0].kernel.assign(np.zeros((4, 4)))
    assert float(hint.compute_loss(outputs, {})) == pytest.approx(1.0, 1e-3)


def test_running_standardizer_first_batch_sets_then_moves():
    standardizer = transfer.RunningStandardizer(momentum=0.5)
    standardizer.build((None, 1))
    standardizer.update(np.array([[0.0], [2.0]]))
    assert float(standardizer.mean[0]) == 1.0
    standardizer.update(np.array([[3.0], [5.0]]))
    assert float(standardizer.mean[0]) == 2.5  # 1 + 0.5 * (4 - 1)


def test_a_term_belongs_to_one_factorizer():
    hint = transfer.HintLoss()
    outputs = outputs_of(*correlated_features()[:1] * 2)
    hint.build(outputs)
    with pytest.raises(ValueError, match="already built for another"):
        hint.build(outputs)


def test_hint_needs_teacher_features():
    outputs = outputs_of(np.zeros((2, 2)), np.zeros((2, 2)))._replace(
        teacher_raw_features=None
    )
    with pytest.raises(ValueError, match="no teacher features"):
        transfer.HintLoss().build(outputs)


# === The memory bound ===


def numpy_info_nce_with_memory(scores, memory, valid):
    memory = np.where(valid, memory, -np.inf)
    candidates = np.concatenate([scores, memory], axis=1)
    lse = special.logsumexp(candidates, axis=1)
    return (
        np.mean(np.diag(scores))
        - np.mean(lse)
        + np.log(scores.shape[1] + valid.sum())
    )


def test_memory_bound_matches_numpy():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(8, 8)).astype("float32")
    memory = rng.normal(size=(8, 20)).astype("float32")
    valid = np.arange(20) < 13
    expected = numpy_info_nce_with_memory(scores, memory, valid)
    got = mi.info_nce_with_memory(scores, memory, memory_valid=valid)
    assert float(got) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("remembered", [0, 56, 4088])
def test_memory_bound_ceiling_rises_as_log_of_the_candidates(remembered):
    batch = 8
    ideal = 60.0 * np.eye(batch, dtype="float32")  # each x names its y
    memory = np.full((batch, 4088), -60.0, "float32")
    valid = np.arange(4088) < remembered
    bound = float(mi.info_nce_with_memory(ideal, memory, memory_valid=valid))
    assert bound == pytest.approx(np.log(batch + remembered), abs=1e-4)
    # In-batch InfoNCE is capped at log B whatever the critic.
    assert float(mi.info_nce(ideal)) == pytest.approx(np.log(batch), abs=1e-4)


def test_feature_queue_is_first_in_first_out():
    queue = transfer.FeatureQueue(4)
    queue.build((None, 1))
    queue.push(np.array([[1.0], [2.0]]))
    queue.push(np.array([[3.0], [4.0], [5.0]]))
    assert np.asarray(queue.features).ravel().tolist() == [3, 4, 5, 1]
    assert np.asarray(queue.valid()).all()


def test_queue_loss_fills_its_queue_and_its_bound_uses_it():
    teacher, rng = correlated_features(num=16, dim=6)
    outputs = outputs_of(teacher, teacher.copy())
    loss = transfer.QueueInfoMaxLoss(queue_size=32, embed_dim=8)
    loss.build(outputs)
    queue = loss.layers[2]
    empty = float(loss.compute_loss(outputs, {}))
    others = rng.normal(size=teacher.shape).astype("float32")
    loss.update_state(outputs_of(others, others))
    assert float(queue.filled) == 16
    np.testing.assert_allclose(np.asarray(queue.features)[:16], others)
    # 16 more negatives, from other images: the bound changes.
    assert float(loss.compute_loss(outputs, {})) != pytest.approx(empty)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: transfer.QueueInfoMaxLoss(queue_size=0), "queue_size > 0"),
        (lambda: transfer.QueueInfoMaxLoss(temperature=0), "temperature > 0"),
        (lambda: transfer.RunningStandardizer(momentum=1.0), "momentum"),
    ],
)
def test_bad_options_raise_clear_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# === In a Factorizer ===


def test_factorizer_trains_the_terms_layers_and_fills_the_queue_in_fit_only():
    keras.utils.set_random_seed(2)
    factorizer = fixtures.tiny_factorizer(
        hint_weight=1.0, queue_weight=1.0, queue_size=48
    )
    regressor, standardizer, *_ = factorizer.loss_layers
    (queue,) = [
        layer
        for layer in factorizer.loss_layers
        if isinstance(layer, transfer.FeatureQueue)
    ]
    assert any(v is regressor.kernel for v in factorizer.trainable_variables)
    assert any(v is queue.features for v in factorizer.non_trainable_variables)
    before = np.array(regressor.kernel)
    factorizer.compile()
    factorizer.evaluate(fixtures.blob_dataset(64), verbose=0)
    assert float(queue.filled) == 0 and float(standardizer.updates) == 0
    history = factorizer.fit(fixtures.blob_dataset(64), epochs=1, verbose=0)
    assert float(queue.filled) == 48 and float(standardizer.updates) == 2
    assert not np.array_equal(before, np.array(regressor.kernel))
    assert {"hint_loss", "queue_infomax_loss"} <= set(history.history)


def test_factorizer_with_the_new_terms_round_trips_its_config():
    factorizer = fixtures.tiny_factorizer(hint_weight=0.5, queue_weight=0.2)
    rebuilt = type(factorizer).from_config(factorizer.get_config())
    assert [repr(t) for t in rebuilt.factor_losses] == [
        repr(t) for t in factorizer.factor_losses
    ]
    assert len(rebuilt.loss_layers) == len(factorizer.loss_layers)


def test_imb_objective_leaves_out_zero_weight_terms():
    names = [t.name for t in imb_objective(hint_weight=0.0, queue_weight=0.0)]
    assert "hint" not in names and "queue_infomax" not in names
    names = [t.name for t in imb_objective(hint_weight=1.0, queue_weight=1.0)]
    assert {"hint", "queue_infomax"} <= set(names)


def test_docstring_examples_run():
    for module in (transfer, mi):
        results = doctest.testmod(
            module, extraglobs={"np": np, "imb_objective": imb_objective}
        )
        assert results.attempted >= 1 and results.failed == 0, module
