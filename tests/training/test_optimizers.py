"""`FusedAdam`: Keras's Adam on TensorFlow's one-kernel update."""

import doctest

from kfactor import keras_internals
from kfactor.training import optimizers
from kfactor.training.optimizers import FusedAdam

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.fixtures import assert_config_roundtrip

SHAPES = [(3, 4), (4,), (5, 5, 2)]


def _train(optimizer, steps=20, seed=0, strategy=None):
    """Weights and slots after `steps` traced updates on seeded gradients
    (in `strategy.run` when given)."""
    rng = np.random.default_rng(seed)
    variables = [
        keras.Variable(rng.normal(size=s).astype("float32")) for s in SHAPES
    ]
    optimizer.build(variables)

    def apply(grads):
        return optimizer.apply(grads, variables)

    if strategy is None:
        update = tf.function(apply)
    else:
        update = tf.function(lambda grads: strategy.run(apply, (grads,)))
    for _ in range(steps):
        update(
            [tf.constant(rng.normal(size=s).astype("float32")) for s in SHAPES]
        )
    slots = [keras_internals.adam_slots(optimizer, v) for v in variables]
    return [v.numpy() for v in [*variables, *sum(slots, ())]]


def _options():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.5)
    return {"learning_rate": schedule, "weight_decay": 0.01, "clipnorm": 1.0}


def test_same_weights_and_slots_as_keras_adam():
    keras_result = _train(keras.optimizers.Adam(**_options()))
    fused_result = _train(FusedAdam(**_options()))
    for a, b in zip(keras_result, fused_result):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The update moved the weights (the comparison is not of two no-ops).
    start = _train(FusedAdam(**_options()), steps=0)
    assert not np.allclose(start[0], fused_result[0])


def _update_ops(optimizer):
    variable = keras.Variable(np.ones(3, "float32"))
    optimizer.build([variable])
    update = tf.function(lambda g: optimizer.apply([g], [variable]))
    graph = update.get_concrete_function(tf.TensorSpec((3,), tf.float32)).graph
    ops = {op.type for op in graph.get_operations()}
    for function in graph._functions.values():
        ops |= {node.op for node in function.definition.node_def}
    return ops


def test_updates_with_one_kernel_a_variable():
    assert "ResourceApplyAdam" in _update_ops(FusedAdam(0.1))
    assert "ResourceApplyAdam" not in _update_ops(keras.optimizers.Adam(0.1))


def test_amsgrad_and_strategies_take_keras_update():
    assert "ResourceApplyAdam" not in _update_ops(FusedAdam(0.1, amsgrad=True))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        keras_result = _train(
            keras.optimizers.Adam(**_options()), 3, strategy=strategy
        )
        fused = FusedAdam(**_options())
        fused_result = _train(fused, 3, strategy=strategy)
    assert int(fused.iterations) == 3
    for a, b in zip(keras_result, fused_result):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_config_roundtrip_and_registration():
    optimizer = FusedAdam(learning_rate=0.01, beta_1=0.8, epsilon=1e-6)
    clone = assert_config_roundtrip(optimizer)
    assert clone.beta_1 == pytest.approx(0.8) and clone.epsilon == 1e-6
    revived = keras.optimizers.deserialize(
        keras.optimizers.serialize(optimizer)
    )
    assert type(revived) is FusedAdam


def test_docstring_examples():
    result = doctest.testmod(optimizers, extraglobs={"np": np, "keras": keras})
    assert result.failed == 0 and result.attempted > 0
