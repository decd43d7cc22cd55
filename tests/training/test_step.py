"""LossTermsModel: one train/test step over `_forward_and_losses`."""

import collections

from kfactor.training.step import LossTermsModel

import keras
import numpy as np
import pytest

Outputs = collections.namedtuple("Outputs", ["logits"])


class LinearRegression(LossTermsModel):
    """`y = w x` fitted on one term, `mse_loss`, and a constant `zero_loss`."""

    def __init__(self, weight_decay=0.0, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1, use_bias=False)
        self.weight_decay = weight_decay
        self._init_trackers(["mse_loss", "zero_loss"], [])

    def call(self, x, training=False):
        return self.dense(x)

    def _forward_and_losses(self, data, training):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        terms = {
            "mse_loss": keras.ops.mean(keras.ops.square(self(x) - y)),
            "zero_loss": keras.ops.zeros(()),
        }
        return terms["mse_loss"], terms, Outputs({})


def line_data():
    x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    return x, 3.0 * x


def test_fit_minimises_the_total_and_logs_every_term():
    model = LinearRegression()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = line_data()
    history = model.fit(x, y, batch_size=16, epochs=20, verbose=0).history
    assert set(history) == {"loss", "mse_loss", "zero_loss"}
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    np.testing.assert_allclose(model.dense.kernel.numpy(), [[3.0]], atol=0.05)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["mse_loss"])
    assert logs["zero_loss"] == 0.0


def test_weight_decay_pulls_the_weights_towards_zero():
    x, y = line_data()
    kernels = []
    for decay in (0.0, 1.0):
        model = LinearRegression(weight_decay=decay)
        model.compile(optimizer=keras.optimizers.SGD(0.5))
        model.fit(x, y, batch_size=64, epochs=40, verbose=0)
        kernels.append(float(model.dense.kernel.numpy()[0, 0]))
    # Coupled decay adds `decay * w` to the gradient `2 m (w - 3)` of the
    # MSE (m = E[x^2]): it stops where they cancel.
    m = float(np.mean(x**2))
    assert kernels[0] == pytest.approx(3.0, abs=0.01)
    assert kernels[1] == pytest.approx(6 * m / (2 * m + 1.0), abs=0.01)


def test_a_subclass_must_write_its_forward_and_losses():
    class NoForward(LossTermsModel):
        pass

    with pytest.raises(NotImplementedError, match="_forward_and_losses"):
        NoForward()._forward_and_losses(None, training=True)
