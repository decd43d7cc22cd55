"""The batch and loss checks stay on under XLA (`jit_compile=True`).

XLA drops `tf.debugging.Assert` ops; the step keeps them out of the
compiled part (`kfactor.training.step`). XLA runs on CPU too.
"""

import kfactor
from kfactor import validation

import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures


def _dataset(edit):
    images, labels = fixtures.blob_images(64)
    labels = {t: v.copy() for t, v in labels.items()}
    edit(images, labels)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)


def _label_99(images, labels):
    labels["row"][40] = 99  # in the second batch


def _nan_image(images, labels):
    images[40, 0, 0, 0] = np.nan


@pytest.fixture
def factorizer():
    factorizer = fixtures.tiny_factorizer(fixtures.factorizer().teacher)
    factorizer.compile(jit_compile=True)
    return factorizer


def _weights(model):
    return [np.array(w) for w in model.common.weights]


def test_xla_compiles_the_forward_pass_not_the_checks(factorizer):
    assert factorizer.xla_forward
    assert not factorizer.jit_compile


def test_a_label_of_99_is_refused_under_xla(factorizer):
    with pytest.raises(ValueError, match=r"labels of task 'row' in \[0, 4\)"):
        factorizer.fit(_dataset(_label_99), epochs=1, verbose=0)
    assert factorizer.optimizer.iterations.numpy() == 1  # batch 1 only


def test_a_nan_image_is_refused_under_xla_before_the_update(factorizer):
    factorizer.fit(_dataset(lambda *_: None).take(1), epochs=1, verbose=0)
    before = _weights(factorizer)
    with pytest.raises(validation.NonFiniteError, match="finite"):
        factorizer.fit(_dataset(_nan_image).skip(1), epochs=1, verbose=0)
    for old, new in zip(before, _weights(factorizer)):
        np.testing.assert_array_equal(old, new)


def test_evaluate_refuses_a_label_of_99_under_xla(factorizer):
    with pytest.raises(ValueError, match="labels of task 'row'"):
        factorizer.evaluate(_dataset(_label_99), verbose=0)


def test_a_baseline_keeps_its_checks_under_xla():
    student = kfactor.lab.baselines.DistilledStudent(
        fixtures.factorizer().teacher, fixtures.tiny_teacher()
    )
    student.compile(jit_compile=True)
    assert student.xla_forward
    student.fit(_dataset(lambda *_: None).take(1), epochs=1, verbose=0)
