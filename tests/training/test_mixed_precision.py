"""Mixed precision: float16/bfloat16 compute, float32 losses, same accuracy."""

import kfactor

import keras
import numpy as np
import pytest

from tests import fixtures

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# One task keeps the three trainings short.
TASKS = {"row": 4}


def blob_dataset(num, seed=0):
    return fixtures.blob_dataset(num, seed=seed).map(
        lambda x, y: (x, {task: y[task] for task in TASKS})
    )


@pytest.fixture
def policy():
    """Sets a global dtype policy for the test; float32 again afterwards."""
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="module")
def teacher():
    # Built and trained in float32: a teacher keeps its own dtype policy.
    keras.utils.set_random_seed(1)
    return fixtures.train_teacher(
        fixtures.tiny_teacher(TASKS), blob_dataset(512), epochs=4
    )


def test_losses_are_float32_under_mixed_float16(teacher, policy):
    policy("mixed_float16")
    factorizer = fixtures.tiny_factorizer(teacher, tasks=list(TASKS))
    factorizer.compile()
    assert isinstance(factorizer.optimizer, keras.optimizers.LossScaleOptimizer)
    images, labels = fixtures.blob_images(16)
    labels = {task: labels[task] for task in TASKS}
    outputs = factorizer._forward(images, training=True)
    assert outputs.logits["row"].dtype == "float16"
    assert outputs.common_code.dtype == "float16"
    for loss in factorizer.factor_losses:
        value = loss.compute_loss(outputs, labels)
        assert value.dtype == "float32", loss.name
        assert np.isfinite(float(value)), loss.name


def test_mixed_policies_train_to_the_float32_accuracy(teacher, policy):
    train = blob_dataset(256)
    images, labels = fixtures.blob_images(128, seed=1)
    accuracy = {}
    for name in POLICIES:
        policy(name)
        keras.utils.set_random_seed(0)
        factorizer = fixtures.tiny_factorizer(teacher, tasks=list(TASKS))
        factorizer.compile(optimizer=keras.optimizers.Adam(1e-2))
        logs = factorizer.fit(train, epochs=3, verbose=0).history
        policy("float32")
        for key, values in logs.items():
            assert np.all(np.isfinite(values)), (name, key)
        # Held-out accuracy from an eager call (no test-step tracing).
        logits = factorizer(images)
        accuracy[name] = np.array(
            [np.mean(np.argmax(logits[t], -1) == labels[t]) for t in TASKS]
        )
        compute = factorizer.task_factors["row"].head.compute_dtype
        assert compute == keras.mixed_precision.Policy(name).compute_dtype
    # Measured: every policy reaches 1.0.
    assert np.all(accuracy["float32"] >= 0.95), accuracy
    for name in POLICIES[1:]:
        np.testing.assert_allclose(
            accuracy[name], accuracy["float32"], atol=0.05, err_msg=name
        )


def test_a_fit_whose_updates_the_loss_scale_skips_trained_its_batches(teacher):
    # A LossScaleOptimizer skips (and does not count) a step whose scaled
    # gradients overflow, as mixed_float16's first steps do: that is no
    # empty dataset (the old check, by step count, said it was: checked).
    factorizer = fixtures.tiny_factorizer(teacher, tasks=list(TASKS))
    optimizer = keras.optimizers.LossScaleOptimizer(
        kfactor.FusedAdam(), initial_scale=3e38
    )
    factorizer.compile(optimizer=optimizer)
    before = [w.numpy() for w in factorizer.trainable_weights]
    history = factorizer.fit(blob_dataset(16).take(1), verbose=0)
    assert int(optimizer.iterations.numpy()) == 0  # the update was skipped
    assert float(optimizer.dynamic_scale.numpy()) < 3e38
    for old, new in zip(before, factorizer.trainable_weights):
        np.testing.assert_array_equal(old, new.numpy())
    assert np.isfinite(history.history["loss"]).all()


def test_an_empty_dataset_is_still_refused_with_a_loss_scale(teacher):
    factorizer = fixtures.tiny_factorizer(teacher, tasks=list(TASKS))
    factorizer.compile(
        optimizer=keras.optimizers.LossScaleOptimizer(kfactor.FusedAdam())
    )
    with pytest.raises(ValueError, match="at least one batch"):
        factorizer.fit(blob_dataset(16).take(0), verbose=0)
