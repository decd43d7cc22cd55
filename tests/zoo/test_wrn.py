"""The CIFAR-size Wide ResNet builder."""

import doctest

from kfactor.zoo import applications
from kfactor.zoo import wrn as wrn_module
from kfactor.zoo.wrn import WIDE_RESNET_STAGES
from kfactor.zoo.wrn import wide_resnet

import keras
import numpy as np
import pytest


def test_wrn_28_2_has_the_reference_shape():
    model = wide_resnet(depth=28, width=2, classes=10)
    # 1.47 M parameters, BatchNorm included (the paper's WRN-28-2: 1.5 M).
    assert model.count_params() == 1_471_226
    widths = [model.get_layer(n).output.shape[-1] for n in WIDE_RESNET_STAGES]
    assert widths == [32, 64, 128]
    sizes = [model.get_layer(n).output.shape[1] for n in WIDE_RESNET_STAGES]
    assert sizes == [32, 16, 8]
    assert model.output_shape == (None, 10)


def test_headless_pooling_and_weights_file(tmp_path):
    model = wide_resnet(
        depth=10, width=1, include_top=False, input_shape=(16, 16, 3)
    )
    assert model.output_shape == (None, 4, 4, 64)
    pooled = wide_resnet(
        depth=10,
        width=1,
        include_top=False,
        pooling="max",
        input_shape=(16, 16, 3),
    )
    assert pooled.output_shape == (None, 64)
    classifier = wide_resnet(depth=10, width=1, input_shape=(16, 16, 3))
    path = str(tmp_path / "wrn.weights.h5")
    classifier.save_weights(path)
    again = wide_resnet(
        depth=10, width=1, input_shape=(16, 16, 3), weights=path
    )
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3))
    np.testing.assert_allclose(again(x), classifier(x), atol=1e-6)


def test_encoder_from_the_applications_signature():
    encoder = applications.applications_encoder(
        wide_resnet, (16, 16, 3), depth=10, width=1, latent_dim=5
    )
    assert encoder.output_shape == (None, 5)
    assert applications.stage_layer_names(encoder) == list(WIDE_RESNET_STAGES)


def test_input_errors():
    with pytest.raises(ValueError, match="6n \\+ 4"):
        wide_resnet(depth=12)
    with pytest.raises(ValueError, match="width"):
        wide_resnet(width=0)
    with pytest.raises(ValueError, match="pooling"):
        wide_resnet(include_top=False, pooling="sum")


def test_docstring_example_runs():
    results = doctest.testmod(
        wrn_module, globs={"keras": keras, **vars(wrn_module)}
    )
    assert results.attempted > 0 and results.failed == 0
