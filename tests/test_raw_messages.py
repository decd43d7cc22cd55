"""The last raw TF/Keras messages: a wrong image size or dtype given to an
assembled model, and uint8 images given to an exported signature."""

import kfactor

import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures


@pytest.fixture(scope="module")
def model():
    return kfactor.assemble(kfactor.load_factors(fixtures.saved_factors()))


def test_a_wrong_image_size_names_the_expected_shape(model):
    with pytest.raises(ValueError) as info:
        model(np.zeros((2, 32, 32, 1), "float32"))
    message = str(info.value)
    assert "assembled model 'assembled' shaped [batch, 16, 16, 1]" in message
    assert "Received: shape [2, 32, 32, 1]" in message
    assert "Fix: resize the images to [16, 16]" in message
    with pytest.raises(ValueError, match="shaped"):
        model.predict(np.zeros((2, 16, 16, 3), "float32"), verbose=0)


def test_uint8_images_to_an_assembled_model_name_the_cast(model):
    with pytest.raises(ValueError, match="Expected float images given to"):
        model(np.zeros((2, 16, 16, 1), "uint8"))


def test_the_assembled_model_still_runs(model):
    logits = model(np.zeros((2, 16, 16, 1), "float32"))
    assert sorted(logits) == ["col", "row"]


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("serving") / "1")
    kfactor.export_for_serving(model, directory)
    return tf.saved_model.load(directory)


def test_the_uint8_signature_rescales_8_bit_pixels(exported):
    pixels = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 1))
    floats = exported.signatures["serving_default"](
        images=tf.constant(pixels / 255.0, "float32")
    )
    from_uint8 = exported.signatures["serving_uint8"](
        images=tf.constant(pixels, "uint8")
    )
    for key, value in floats.items():
        np.testing.assert_allclose(from_uint8[key], value, atol=1e-5)


def test_uint8_to_the_float_signature_stays_tensorflow_s_error(exported):
    """Raised by TensorFlow before any code of the SavedModel runs: the fix
    is `serving_uint8`, documented in `kfactor.factors.export`."""
    images = tf.zeros((2, 16, 16, 1), "uint8")
    with pytest.raises(tf.errors.InvalidArgumentError, match="float tensor"):
        exported.signatures["serving_default"](images=images)
