"""The Keras internals of `kfactor.keras_graph`, on the Keras they were
checked against (3.15), and why public `layer.output` is not enough."""

from kfactor import keras_graph
from kfactor.layers.features import feature_model
from kfactor.layers.features import head_input

import keras
import pytest


def two_models_sharing_a_layer():
    """Layer `shared` is called first in model `first`, then in `second`."""
    shared = keras.layers.Dense(3, name="shared")
    x = keras.Input((4,))
    first = keras.Model(x, shared(x), name="first")
    y = keras.Input((4,))
    head = keras.layers.Dense(2, name="head")
    second = keras.Model(y, {"task": head(shared(y))}, name="second")
    return shared, first, second


def test_checked_against_this_keras_version():
    major_minor = ".".join(keras.__version__.split(".")[:2])
    assert major_minor == keras_graph.KERAS_VERSION_CHECKED, (
        f"kfactor.keras_graph was checked against Keras "
        f"{keras_graph.KERAS_VERSION_CHECKED}; this is {keras.__version__}. "
        "Re-run tests/test_keras_graph.py and tests/test_applications.py, "
        "then update KERAS_VERSION_CHECKED."
    )


def test_public_layer_output_is_the_first_call_only():
    # Why the internals stay: public Keras cannot read `shared` in `second`.
    shared, first, second = two_models_sharing_a_layer()
    assert shared.output is first.output
    with pytest.raises(ValueError, match="not connected"):
        keras.Model(second.inputs, second.get_layer("shared").output)


def test_layer_output_in_finds_the_models_own_call():
    shared, first, second = two_models_sharing_a_layer()
    assert keras_graph.layer_output_in(first, shared) is first.output
    own = keras_graph.layer_output_in(second, shared)
    assert own is not first.output
    head = second.get_layer("head")
    assert keras_graph.layer_output_in(second, head) is second.outputs[0]
    assert keras_graph.layer_output_in(first, head) is None
    reader = feature_model(second, ["shared"], "reader")
    assert tuple(reader.outputs[1].shape) == (None, 3)


def test_producer_inputs_are_the_calls_inputs():
    shared, _, second = two_models_sharing_a_layer()
    layer, inputs = keras_graph.producer_inputs(second.outputs[0])
    assert layer is second.get_layer("head")
    assert inputs == [keras_graph.layer_output_in(second, shared)]
    assert head_input(second) is inputs[0]
    assert keras_graph.producer_inputs(second.inputs[0]) is not None
    assert keras_graph.producer_inputs(keras.ops.ones((2,))) is None


def test_is_functional():
    _, first, _ = two_models_sharing_a_layer()
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert keras_graph.is_functional(first)
    assert not keras_graph.is_functional(sequential)
    wrapped = keras.Model(sequential.inputs, sequential.outputs)
    assert keras_graph.is_functional(wrapped)  # the fix features.py names
    name = sequential.layers[0].name
    assert len(feature_model(wrapped, [name], "reader").outputs) == 2
    assert not keras_graph.is_functional(Subclassed())
    assert not keras_graph.is_functional(keras.layers.Dense(2))
