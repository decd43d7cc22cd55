"""The CIFAR-form ResNet-18 and MobileNetV2 builders."""

import doctest

from kfactor.zoo import cifar
from kfactor.zoo.cifar import RESNET18_CIFAR_STAGES
from kfactor.zoo.cifar import mobilenet_v2_cifar
from kfactor.zoo.cifar import resnet18_cifar

import keras
import numpy as np
import pytest


def test_resnet18_cifar_has_the_reference_shape():
    model = resnet18_cifar()
    # ResNet-18 (CIFAR stem, no classifier): PyTorch's 11,168,832
    # parameters plus the 9,600 BatchNorm moving statistics Keras counts.
    assert model.count_params() == 11_168_832 + 9_600
    assert model.output_shape == (None, 512)
    shapes = [
        model.get_layer(n).output.shape[1:] for n in RESNET18_CIFAR_STAGES
    ]
    assert shapes == [(16, 16, 128), (8, 8, 256), (4, 4, 512)]


def test_mobilenet_v2_cifar_half_width_ends_on_4x4():
    model = mobilenet_v2_cifar(alpha=0.5, pooling=None)
    assert model.output_shape == (None, 4, 4, 1280)
    assert model.get_layer("stem_conv").output.shape[1:] == (32, 32, 16)
    depthwise = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.DepthwiseConv2D)
    ]
    assert len(depthwise) == 17


def test_models_rebuild_from_config_and_refuse_bad_arguments():
    model = mobilenet_v2_cifar(
        (16, 16, 3), alpha=0.25, last_channels=16, stages=((1, 16, 1, 1),)
    )
    clone = keras.Model.from_config(model.get_config())
    images = np.random.default_rng(0).random((2, 16, 16, 3), "float32")
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(images), model(images), atol=1e-6)
    with pytest.raises(ValueError, match="four stage"):
        resnet18_cifar(widths=(8, 16))
    with pytest.raises(ValueError, match="alpha"):
        mobilenet_v2_cifar(alpha=0)
    with pytest.raises(ValueError, match="pooling"):
        resnet18_cifar(pooling="max")


def test_docstring_examples():
    assert doctest.testmod(cifar, optionflags=doctest.ELLIPSIS).failed == 0
