"""`Factorizer.compile`: Keras's `jit_compile` and kfactor's optimizer;
`Factorizer(trainable=...)`.

`jit_compile` means what it means in `keras.Model.compile`, `"auto"`
included; the resolved value lands in `xla_forward` (XLA compiles the
forward pass and gradients only, `kfactor.training.step`), and
`jit_compile` reads False. Keras resolves `"auto"` against the devices
TensorFlow sees, so the GPU cases fake one: only `compile` runs, nothing
is placed on it.
"""

import warnings

from kfactor.training import factorizer as factorizer_lib
from kfactor.training.optimizers import FusedAdam

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures


@pytest.fixture(scope="module")
def teacher():
    return fixtures.tiny_teacher()


def plain_model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


@pytest.fixture
def fake_gpu(monkeypatch):
    """TensorFlow's device lists also show a GPU (what Keras's `"auto"`
    and kfactor's former rule looked at)."""
    for lister, device in (
        ("list_physical_devices", tf.config.PhysicalDevice),
        ("list_logical_devices", tf.config.LogicalDevice),
    ):
        real = getattr(tf.config, lister)

        def devices(device_type=None, real=real, device=device):
            found = list(real(device_type))
            if device_type in (None, "GPU"):
                found.append(device("/physical_device:GPU:0", "GPU"))
            return found

        monkeypatch.setattr(tf.config, lister, devices)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_an_explicit_jit_compile_is_passed_through(teacher, jit_compile):
    factorizer = fixtures.tiny_factorizer(teacher)
    factorizer.compile(jit_compile=jit_compile)
    assert factorizer.xla_forward is jit_compile
    # The step as a whole is never XLA-compiled: its checks run around it.
    assert factorizer.jit_compile is False


def test_auto_is_what_a_plain_keras_model_gets_here(teacher):
    factorizer = fixtures.tiny_factorizer(teacher)
    factorizer.compile()
    plain = plain_model()
    plain.compile(optimizer="sgd", loss="mse")
    assert factorizer.xla_forward is plain.jit_compile
    on_accelerator = any(
        d.device_type != "CPU" for d in tf.config.list_physical_devices()
    )
    if not on_accelerator:
        # No XLA on a CPU-only machine: the tests and the demo stay off it.
        assert factorizer.xla_forward is False


def test_auto_uses_xla_when_keras_sees_a_gpu(teacher, fake_gpu):
    factorizer = fixtures.tiny_factorizer(teacher)
    factorizer.compile()
    plain = plain_model()
    plain.compile(optimizer="sgd", loss="mse")
    assert plain.jit_compile is True
    assert factorizer.xla_forward is True


def test_auto_turns_xla_off_under_tf_distribute_as_keras_does(fake_gpu):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        factorizer = fixtures.tiny_factorizer()
        plain = plain_model()
    factorizer.compile()
    plain.compile(optimizer="sgd", loss="mse")
    assert plain.jit_compile is False
    assert factorizer.xla_forward is False


def test_auto_is_off_with_run_eagerly(teacher, fake_gpu):
    factorizer = fixtures.tiny_factorizer(teacher)
    factorizer.compile(run_eagerly=True)
    assert factorizer.xla_forward is False


def test_xla_with_the_checks_on_warns_nothing(teacher):
    # XLA does not drop the batch and loss checks
    # (tests/training/test_xla_checks.py shows them refusing bad batches
    # under XLA): nothing to warn about.
    factorizer = fixtures.tiny_factorizer(
        teacher, check_batches=True, stop_on_nonfinite_loss=True
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        factorizer.compile(jit_compile=True)
    assert [str(w.message) for w in caught] == []
    assert factorizer.xla_forward and factorizer.check_batches


def test_the_default_optimizer_is_fused_adam_at_1e_3(teacher):
    factorizer = fixtures.tiny_factorizer(teacher)
    factorizer.compile()
    assert type(factorizer.optimizer) is FusedAdam
    np.testing.assert_allclose(
        float(factorizer.optimizer.learning_rate), 1e-3, rtol=1e-6
    )
    assert "FusedAdam(learning_rate=1e-3)" in " ".join(
        factorizer_lib.Factorizer.compile.__doc__.split()
    )


@pytest.mark.parametrize("trainable", [False, 0, None, "yes"])
def test_trainable_other_than_true_is_refused(teacher, trainable):
    match = rf"Expected trainable=True.*Received: trainable={trainable!r}"
    with pytest.raises(ValueError, match=match) as error:
        fixtures.tiny_factorizer(teacher, trainable=trainable)
    assert "factorizer.common.trainable = False" in str(error.value)


def test_trainable_true_is_the_default_and_accepted(teacher):
    factorizer = fixtures.tiny_factorizer(teacher, trainable=True)
    assert factorizer.trainable is True
    assert factorizer.trainable_variables
