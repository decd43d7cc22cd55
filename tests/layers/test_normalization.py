"""`FusedBatchNormalization`: Keras batch norm on the fused kernel."""

import doctest

from kfactor import Factorizer
from kfactor import TaskFactor
from kfactor.lab import demo
from kfactor.lab.demo.networks import objective_options
from kfactor.layers import normalization
from kfactor.layers.normalization import FusedBatchNormalization
from kfactor.zoo import simple_conv as models

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.fixtures import assert_config_roundtrip


def _images(shape=(8, 8, 8, 3), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _pair(shape):
    """A Keras and a fused layer with the same (non-trivial) weights."""
    stock = keras.layers.BatchNormalization(momentum=0.9)
    fused = FusedBatchNormalization(momentum=0.9)
    for layer in (stock, fused):
        layer.build(shape)
    rng = np.random.default_rng(1)
    weights = [
        rng.normal(1.0, 0.1, shape[-1]).astype("float32"),
        rng.normal(0.0, 0.1, shape[-1]).astype("float32"),
        rng.normal(0.0, 0.1, shape[-1]).astype("float32"),
        rng.uniform(0.5, 1.5, shape[-1]).astype("float32"),
    ]
    stock.set_weights(weights)
    fused.set_weights(weights)
    return stock, fused


@pytest.mark.parametrize("training", [True, False])
def test_matches_keras_batch_norm_outputs_gradients_statistics(training):
    x = tf.constant(_images())
    stock, fused = _pair(x.shape)
    results = []
    for layer in (stock, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(tf.square(y) * tf.range(3.0))
        grads = tape.gradient(loss, [x, *layer.trainable_variables])
        results.append((y, grads, layer.get_weights()))
    (y_a, g_a, w_a), (y_b, g_b, w_b) = results
    np.testing.assert_allclose(y_a, y_b, rtol=1e-5, atol=1e-5)
    for a, b in zip(g_a, g_b):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for a, b in zip(w_a, w_b):  # moving mean and variance moved alike
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("trainable", [True, False])
def test_inference_is_keras_batch_norm_bit_for_bit(trainable):
    """Saved factors must compute exactly what the in-memory network does:
    inference (and a frozen layer in training mode) is Keras's own code."""
    x = tf.constant(_images())
    stock, fused = _pair(x.shape)
    for layer in (stock, fused):
        layer.trainable = trainable
    training = not trainable
    eager = [layer(x, training=training) for layer in (stock, fused)]
    traced = [
        tf.function(lambda v, layer=layer: layer(v, training=training))(x)
        for layer in (stock, fused)
    ]
    np.testing.assert_array_equal(eager[0], eager[1])
    np.testing.assert_array_equal(traced[0], traced[1])


def test_other_inputs_go_to_the_keras_layer():
    x = _images((4, 5))
    stock, fused = _pair(x.shape)
    np.testing.assert_allclose(
        stock(x, training=True), fused(x, training=True), atol=1e-6
    )


def test_config_roundtrip_and_registration():
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-4, name="bn")
    clone = assert_config_roundtrip(layer)
    assert clone.momentum == 0.9 and clone.epsilon == 1e-4
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(revived) is FusedBatchNormalization


def test_simple_conv64_batch_is_fused_and_keras_batch_is_keras():
    encoder = models.simple_conv64(widths=models.NARROW_WIDTHS)
    keras_batch = models.simple_conv64(
        widths=models.NARROW_WIDTHS, normalization="keras_batch"
    )
    batch = models.simple_conv64(
        widths=models.NARROW_WIDTHS, normalization="batch"
    )
    for model in (encoder, keras_batch):
        assert not any(
            isinstance(layer, FusedBatchNormalization) for layer in model.layers
        )
    norms = [
        layer
        for layer in batch.layers
        if isinstance(layer, FusedBatchNormalization)
    ]
    assert len(norms) == 6


def _with_keras_batch_norm(model):
    def clone(layer):
        if type(layer) is FusedBatchNormalization:
            return keras.layers.BatchNormalization.from_config(
                layer.get_config()
            )
        return layer.__class__.from_config(layer.get_config())

    twin = keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())
    return twin


def test_factorization_step_same_losses_and_gradients_as_keras_batch_norm():
    config = demo.DemoConfig(
        widths=models.NARROW_WIDTHS, latent_dim=8, normalization="batch"
    )
    teacher = demo.build_teacher(config)
    fused = demo.build_factorizer(
        teacher, config, task_names=("shape", "scale"), variational=False
    )
    stock = Factorizer(
        _with_keras_batch_norm(teacher),
        common=_with_keras_batch_norm(fused.common.encoder),
        tasks={
            task: TaskFactor(
                _with_keras_batch_norm(factor.encoder),
                variational=False,
                name=f"task_{task}",
            )
            for task, factor in fused.task_factors.items()
        },
        beta=config.beta,
        **objective_options(config),  # the demo's stages and terms
    )
    assert not any(
        isinstance(layer, FusedBatchNormalization)
        for layer in stock.common.encoder.layers
    )
    stock.set_weights(fused.get_weights())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 2, (16, 64, 64, 1)).astype("float32")
    labels = {
        "shape": rng.integers(0, 3, 16).astype("int32"),
        "scale": rng.integers(0, 6, 16).astype("int32"),
    }
    results = []
    for factorizer in (fused, stock):
        with tf.GradientTape() as tape:
            total, terms, *_ = factorizer._forward_and_losses(
                (images, labels), training=True
            )
        variables = factorizer.trainable_variables
        results.append((total, terms, tape.gradient(total, variables)))
    (t_a, terms_a, g_a), (t_b, terms_b, g_b) = results
    np.testing.assert_allclose(t_a, t_b, rtol=1e-5)
    for name in terms_a:
        np.testing.assert_allclose(
            terms_a[name], terms_b[name], rtol=1e-4, atol=1e-6
        )
    assert len(g_a) == len(g_b)
    assert [a is None for a in g_a] == [b is None for b in g_b]
    pairs = [(a, b) for a, b in zip(g_a, g_b) if a is not None]
    # Some gradients are 0 in exact arithmetic (a bias before a batch norm):
    # float noise there is measured against the largest gradient.
    scale = max(float(tf.reduce_max(tf.abs(b))) for _, b in pairs)
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * scale)


def test_docstring_examples():
    result = doctest.testmod(normalization, extraglobs={"np": np})
    assert result.failed == 0 and result.attempted > 0
