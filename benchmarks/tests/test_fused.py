"""The fused-encoder prototype computes what the separate encoders do."""

from kfactor.zoo.simple_conv import NARROW_WIDTHS

import numpy as np
import tensorflow as tf

from benchmarks import fused_encoders


def _images(batch_size=8):
    rng = np.random.default_rng(0)
    return tf.constant(rng.integers(0, 2, (batch_size, 64, 64, 1)), "float32")


def test_fused_encoders_give_the_same_loss_and_gradients():
    loss_separate, loss_fused, max_diff = fused_encoders.check_equal(
        NARROW_WIDTHS, batch_size=8
    )
    assert abs(loss_separate - loss_fused) <= 1e-6 * abs(loss_separate)
    assert max_diff < 1e-5


def test_fused_weights_split_back_into_each_encoder():
    encoders = fused_encoders.separate_encoders(NARROW_WIDTHS, 3)
    fused = fused_encoders.FusedEncoders(encoders)
    for encoder, weights in zip(encoders, fused.split_weights()):
        expected = encoder.get_weights()
        assert len(weights) == len(expected)
        for a, b in zip(weights, expected):
            np.testing.assert_array_equal(a, b)
