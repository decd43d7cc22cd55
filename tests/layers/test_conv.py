"""`MatmulConv2D`: the stock convolution, as a matmul on a 1x1 output."""

import doctest
import zipfile

from kfactor.layers import _legacy as legacy
from kfactor.layers import conv as conv_module
from kfactor.layers.conv import MatmulConv2D
from kfactor.zoo.simple_conv import NARROW_WIDTHS
from kfactor.zoo.simple_conv import simple_conv64

import keras
import numpy as np
import pytest
import tensorflow as tf

# (input height, width, kernel, strides, padding): SimpleConv64's last layer
# first, then other 1x1 outputs (odd sizes, stride leftovers, "valid"), then
# shapes that keep the stock convolution.
MATMUL_CASES = [
    (2, 2, 4, 2, "same"),
    (1, 1, 4, 2, "same"),
    (3, 2, 5, 3, "same"),
    (2, 2, 1, 2, "same"),
    (4, 4, 4, 2, "valid"),
    (5, 4, 4, 2, "valid"),
    (3, 3, 3, 1, "valid"),
]
STOCK_CASES = [
    (4, 4, 4, 2, "same"),
    (3, 3, 4, 2, "same"),
    (6, 6, 4, 2, "valid"),
]


def _pair(shape, kernel, strides, padding):
    """A stock `Conv2D` and a `MatmulConv2D` with the same weights."""
    options = dict(
        kernel_size=kernel, strides=strides, padding=padding, activation="relu"
    )
    stock = keras.layers.Conv2D(5, **options)
    ours = MatmulConv2D(5, **options)
    stock.build(shape)
    ours.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in ours.weights]
    stock.set_weights(weights)
    ours.set_weights(weights)
    return stock, ours


def _outputs_and_gradients(layer, images):
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = layer(images)
        loss = tf.reduce_sum(outputs * outputs)
    grads = tape.gradient(loss, [images, layer.kernel, layer.bias])
    return [outputs, *grads]


@pytest.mark.parametrize("case", MATMUL_CASES + STOCK_CASES)
def test_matches_the_stock_convolution_and_its_gradients(case):
    height, width, kernel, strides, padding = case
    shape = (3, height, width, 2)
    stock, ours = _pair(shape, kernel, strides, padding)
    assert (ours._matmul_windows(shape) is not None) == (case in MATMUL_CASES)
    images = tf.constant(np.random.default_rng(1).normal(size=shape), "float32")
    expected = _outputs_and_gradients(stock, images)
    received = _outputs_and_gradients(ours, images)
    for name, want, got in zip(("y", "dx", "dW", "db"), expected, received):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(
            got, want, rtol=1e-5, atol=1e-4, err_msg=name
        )


def test_padding_only_taps_get_no_gradient():
    _, ours = _pair((3, 2, 2, 2), 4, 2, "same")
    images = tf.ones((3, 2, 2, 2))
    kernel_grad = _outputs_and_gradients(ours, images)[2].numpy()
    centre = np.zeros((4, 4), bool)
    centre[1:3, 1:3] = True
    assert np.all(kernel_grad[~centre] == 0)
    assert np.any(kernel_grad[centre] != 0)


def test_simple_conv64_runs_its_last_layer_as_a_matmul():
    encoder = simple_conv64(10, widths=NARROW_WIDTHS)
    convs = [
        layer for layer in encoder.layers if isinstance(layer, MatmulConv2D)
    ]
    assert len(convs) == 6
    shortcuts = [c._matmul_windows(c.input.shape) is not None for c in convs]
    assert shortcuts == [False] * 5 + [True]

    @tf.function
    def forward(images):
        return encoder(images)

    graph = forward.get_concrete_function(tf.TensorSpec((1, 64, 64, 1))).graph
    op_types = [op.type for op in graph.get_operations()]
    assert op_types.count("Conv2D") == 5


def test_serializes_and_takes_stock_weights():
    ours = MatmulConv2D(4, 4, strides=2, padding="same", name="c")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(ours)
    )
    assert type(restored) is MatmulConv2D
    assert restored.get_config() == ours.get_config()
    # Stock weights move into the layer (and back) with set_weights.
    images = keras.Input((2, 2, 3))
    stock = keras.Model(
        images, keras.layers.Conv2D(4, 4, strides=2, padding="same")(images)
    )
    mine = keras.Model(
        images, MatmulConv2D(4, 4, strides=2, padding="same")(images)
    )
    mine.set_weights(stock.get_weights())
    probe = np.random.default_rng(2).normal(size=(2, 2, 2, 3)).astype("float32")
    np.testing.assert_allclose(mine(probe), stock(probe), atol=1e-5)


def test_models_saved_before_the_rename_load(tmp_path):
    """0.1 saved the layer as `kfactor>Conv2D` (the shipped teacher): such
    a file loads, weights included."""
    images = keras.Input((2, 2, 3))
    model = keras.Model(
        images, legacy.Conv2D(4, 4, strides=2, padding="same")(images)
    )
    path = tmp_path / "old.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = files["config.json"].decode()
    assert '"kfactor>Conv2D"' in config
    restored = keras.saving.load_model(path)
    assert type(restored.layers[-1]) is legacy.Conv2D
    assert isinstance(restored.layers[-1], MatmulConv2D)
    probe = np.ones((1, 2, 2, 3), "float32")
    np.testing.assert_allclose(restored(probe), model(probe), atol=1e-6)


def test_docstring_examples():
    result = doctest.testmod(conv_module, extraglobs={"np": np})
    assert result.failed == 0 and result.attempted > 0
