"""Folding batch normalization for inference: the same function, fewer ops,
and every place a factor is saved or assembled uses it."""

import kfactor
from kfactor.factors import assembly
from kfactor.factors import folding
from kfactor.layers.normalization import FoldedBatchNormalization
from kfactor.layers.normalization import FusedBatchNormalization

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures


def randomize_statistics(model, seed=0):
    """Gives every batch normalization of `model` (nested too) moving
    statistics and an affine map far from the identity."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.3, n))
    return model


def inference(model, x):
    return np.asarray(model(x, training=False))


def assert_same_function(model, folded, x):
    expected = inference(model, x)
    scale = max(1.0, np.max(np.abs(expected)))
    assert np.max(np.abs(inference(folded, x) - expected)) <= 1e-5 * scale


def every_kind():
    """Conv2D (with and without bias), DepthwiseConv2D, Conv1D via a
    reshape, Dense, kfactor's fused batch norm, and BN without scale or
    center: all foldable."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False)(inputs)
    x = FusedBatchNormalization(name="bn_conv")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)
    x = keras.layers.BatchNormalization(scale=False, name="bn_depthwise")(x)
    x = keras.layers.Reshape((64, 12))(x)
    x = keras.layers.Conv1D(5, 3)(x)
    x = keras.layers.BatchNormalization(center=False, name="bn_conv1d")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(4)(x)
    x = keras.layers.BatchNormalization(name="bn_dense")(x)
    return randomize_statistics(keras.Model(inputs, x, name="kinds"))


def test_every_kind_folds_and_computes_the_same_function():
    model = every_kind()
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype("float32")
    pairs = folding.batch_norm_pairs(model)
    assert [norm.name for _, norm in pairs] == [
        "bn_conv",
        "bn_depthwise",
        "bn_conv1d",
        "bn_dense",
    ]
    folded = folding.fold_batch_norm(model)
    assert_same_function(model, folded, x)
    kinds = [type(layer) for layer in folded.layers]
    assert kinds.count(FoldedBatchNormalization) == 4
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in folded.layers
    )
    # The folded layers are new ones with a bias; the model is untouched.
    for layer, _ in pairs:
        copy = folded.get_layer(layer.name)
        assert copy is not layer and copy.use_bias
        assert type(copy) is type(layer)
    assert type(model.get_layer("bn_conv")) is FusedBatchNormalization
    assert folding.batch_norm_pairs(folded) == []


def test_folded_weights_match_the_formula():
    conv = keras.layers.Conv2D(3, 1, use_bias=True)
    norm = keras.layers.BatchNormalization(epsilon=0.01)
    inputs = keras.Input((2, 2, 2))
    randomize_statistics(keras.Model(inputs, norm(conv(inputs))), seed=4)
    kernel, bias = folding.folded_weights(conv, norm)
    scale = norm.gamma.numpy() / np.sqrt(norm.moving_variance.numpy() + 0.01)
    np.testing.assert_allclose(kernel, conv.kernel.numpy() * scale, rtol=1e-6)
    expected = (conv.bias.numpy() - norm.moving_mean.numpy()) * scale
    np.testing.assert_allclose(
        bias, expected + norm.beta.numpy(), rtol=1e-5, atol=1e-6
    )


def unfoldable():
    """Batch norms that must stay: after an activation, after a tensor
    read twice (a residual), on the channels axis of channels-first, after
    an add, and after a layer called twice."""
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization(name="after_relu")(x)
    branch = keras.layers.Conv2D(4, 3, padding="same", name="read_twice")(x)
    y = keras.layers.BatchNormalization(name="after_shared_tensor")(branch)
    x = keras.layers.Add()([branch, y])
    x = keras.layers.BatchNormalization(name="after_add")(x)
    shared = keras.layers.Conv2D(4, 1, name="called_twice")
    x = keras.layers.BatchNormalization(name="after_twice")(shared(x))
    x = shared(x)
    x = keras.layers.Conv2D(
        4, 1, data_format="channels_first", name="channels_first"
    )(x)
    x = keras.layers.BatchNormalization(axis=1, name="channels_axis")(x)
    return randomize_statistics(keras.Model(inputs, x, name="unfoldable"))


def test_what_cannot_fold_stays_and_the_function_is_unchanged():
    model = unfoldable()
    assert folding.batch_norm_pairs(model) == []
    assert folding.fold_batch_norm(model) is model


def test_nested_models_fold_and_unfolded_layers_are_shared():
    inner = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(3, 3, use_bias=False, name="inner_conv"),
            keras.layers.BatchNormalization(name="inner_bn"),
            keras.layers.ReLU(name="inner_relu"),
        ],
        name="inner",
    )
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.GlobalAveragePooling2D()(inner(inputs))
    head = keras.layers.Dense(2, name="head")
    model = keras.Model(inputs, head(x), name="outer")
    randomize_statistics(model)
    folded = folding.fold_batch_norm(model)
    x = np.random.default_rng(2).normal(size=(3, 6, 6, 2)).astype("float32")
    assert_same_function(model, folded, x)
    inner_folded = folded.get_layer("inner")
    assert isinstance(
        inner_folded.get_layer("inner_bn"), FoldedBatchNormalization
    )
    assert folded.get_layer("head") is head
    assert inner_folded.get_layer("inner_relu") is inner.get_layer("inner_relu")
    assert inner_folded.get_layer("inner_conv") is not inner.get_layer(
        "inner_conv"
    )


def test_a_subclassed_model_is_refused_with_the_fix():
    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="functional API"):
        folding.fold_batch_norm(Net())
    net = Net()
    assert folding.fold_if_possible(net, np.ones((1, 2), "float32")) is net
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="Fix: build it first"):
        folding.fold_batch_norm(unbuilt)


def test_a_folded_model_saves_and_reloads(tmp_path):
    model = every_kind()
    folded = folding.fold_batch_norm(model)
    path = str(tmp_path / "folded.keras")
    folded.save(path)
    reloaded = keras.saving.load_model(path)
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(inference(reloaded, x), inference(folded, x))


class BiasFreeDense(keras.layers.Dense):
    """A Dense subclass whose `call` ignores its bias: folding moves the
    batch norm's shift into the bias, so its folded copy computes another
    function."""

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.kernel)


def test_a_fold_that_changes_the_function_is_not_used(caplog):
    inputs = keras.Input((3,))
    norm = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(inputs, norm(BiasFreeDense(2, use_bias=False)(inputs)))
    randomize_statistics(model, seed=9)
    x = np.random.default_rng(4).normal(size=(5, 3)).astype("float32")
    assert len(folding.batch_norm_pairs(model)) == 1
    assert (
        np.max(
            np.abs(
                inference(folding.fold_batch_norm(model), x)
                - inference(model, x)
            )
        )
        > 1e-3
    )
    with caplog.at_level("WARNING", logger=folding.__name__):
        assert folding.fold_if_possible(model, x) is model
    assert "Not folding the batch normalization" in caplog.text
    folded = folding.fold_if_possible(every_kind(), np.ones((2, 8, 8, 3)))
    assert any(
        isinstance(layer, FoldedBatchNormalization) for layer in folded.layers
    )


@pytest.fixture(scope="module")
def batch_norm_factorizer():
    keras.utils.set_random_seed(11)
    shape = fixtures.TINY_SHAPE

    def encoder(dim, name):
        return kfactor.zoo.simple_conv64(
            dim,
            widths=fixtures.TINY_WIDTHS,
            input_shape=shape,
            normalization="batch",
            name=name,
        )

    factorizer = kfactor.Factorizer(
        fixtures.tiny_teacher(),
        common=encoder(6, "common_encoder"),
        tasks={t: encoder(None, f"{t}_encoder") for t in fixtures.TINY_TASKS},
    )
    randomize_statistics(factorizer.common.encoder, seed=5)
    for seed, factor in enumerate(factorizer.task_factors.values()):
        randomize_statistics(factor.encoder, seed=6 + seed)
    return factorizer


def graph_op_types(saved_model_dir):
    loaded = tf.saved_model.load(saved_model_dir)
    graph = loaded.serve.concrete_functions[0].graph.as_graph_def()
    types = {node.op for node in graph.node}
    for function in graph.library.function:
        types |= {node.op for node in function.node_def}
    return types


def test_saved_factors_are_folded_and_verify_against_the_unfolded(
    batch_norm_factorizer, tmp_path
):
    factorizer = batch_norm_factorizer
    paths = factorizer.save_factors(str(tmp_path / "factors"))
    for name in ("common", "row"):
        ops = graph_op_types(f"{paths[name]}/saved_model")
        assert "Rsqrt" not in ops and not any("BatchNorm" in o for o in ops)
    factors = kfactor.load_factors(str(tmp_path / "factors"))
    model = kfactor.assemble(factors, verify=True)
    images = fixtures.probe()
    for task, logits in model(images).items():
        expected = factorizer.factor_network(task)(images, training=False)
        scale = max(1.0, float(np.max(np.abs(expected))))
        assert np.max(np.abs(logits - expected)) <= 1e-5 * scale


def test_in_memory_assembly_folds_by_default_and_can_share_instead(
    batch_norm_factorizer,
):
    factorizer = batch_norm_factorizer
    folded = kfactor.assemble(factorizer)
    shared = kfactor.assemble(factorizer, fold_batch_norm=False)

    def folded_norms(model):
        return [
            layer
            for layer in model._flatten_layers()
            if isinstance(layer, FoldedBatchNormalization)
        ]

    # One per convolution block of the common and the two task encoders.
    assert len(folded_norms(folded)) == 3 * len(fixtures.TINY_WIDTHS)
    assert folded_norms(shared) == []
    assert shared.get_layer("common") is factorizer.common
    images = fixtures.probe()
    differences = assembly.check_assembly(folded, factorizer, images)
    for task, difference in differences.items():
        scale = max(
            1.0, np.max(np.abs(factorizer.factor_network(task)(images)))
        )
        assert difference <= assembly.TOLERANCE * scale
    np.testing.assert_array_equal(
        shared(images)["row"], factorizer.factor_network("row")(images)
    )
