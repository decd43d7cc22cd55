"""The Keras internals of `kfactor.keras_internals`, on the Keras they were
checked against (3.15), and why public `layer.output` is not enough."""

from kfactor import keras_internals
from kfactor.layers.features import feature_model
from kfactor.layers.features import head_input

import keras
import numpy as np
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
    assert major_minor == keras_internals.KERAS_VERSION_CHECKED, (
        f"kfactor.keras_internals was checked against Keras "
        f"{keras_internals.KERAS_VERSION_CHECKED}; this is "
        f"{keras.__version__}. "
        "Re-run tests/test_keras_internals.py and "
        "tests/zoo/test_applications.py, "
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
    assert keras_internals.layer_output_in(first, shared) is first.output
    own = keras_internals.layer_output_in(second, shared)
    assert own is not first.output
    head = second.get_layer("head")
    assert keras_internals.layer_output_in(second, head) is second.outputs[0]
    assert keras_internals.layer_output_in(first, head) is None
    reader = feature_model(second, ["shared"], "reader")
    assert tuple(reader.outputs[1].shape) == (None, 3)


def test_producer_inputs_are_the_calls_inputs():
    shared, _, second = two_models_sharing_a_layer()
    layer, inputs = keras_internals.producer_inputs(second.outputs[0])
    assert layer is second.get_layer("head")
    assert inputs == [keras_internals.layer_output_in(second, shared)]
    assert head_input(second) is inputs[0]
    assert keras_internals.producer_inputs(second.inputs[0]) is not None
    assert keras_internals.producer_inputs(keras.ops.ones((2,))) is None


def test_is_functional():
    _, first, _ = two_models_sharing_a_layer()
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert keras_internals.is_functional(first)
    assert not keras_internals.is_functional(sequential)
    wrapped = keras.Model(sequential.inputs, sequential.outputs)
    assert keras_internals.is_functional(wrapped)  # the fix features.py names
    name = sequential.layers[0].name
    assert len(feature_model(wrapped, [name], "reader").outputs) == 2
    assert not keras_internals.is_functional(Subclassed())
    assert not keras_internals.is_functional(keras.layers.Dense(2))


def test_saved_model_of_a_tfsm_layer_is_the_loaded_object(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.export(str(tmp_path / "m"), verbose=False)
    layer = keras.layers.TFSMLayer(str(tmp_path / "m"), call_endpoint="serve")
    restored = keras_internals.saved_model_of(layer)
    assert hasattr(restored, "serve")
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(restored.serve(x), layer(x))


def test_adam_slots_finds_each_variables_slots():
    variables = [keras.Variable(np.zeros(n, "float32")) for n in (2, 3, 4)]
    optimizer = keras.optimizers.Adam()
    optimizer.build(variables)
    for variable in variables:
        momentum, velocity = keras_internals.adam_slots(optimizer, variable)
        assert momentum.shape == variable.shape
        assert velocity.shape == variable.shape
        assert momentum is not velocity
        # TF's update passes the backing tf.Variable: found the same.
        same = keras_internals.adam_slots(optimizer, variable.value)
        assert same[0] is momentum and same[1] is velocity


def test_graph_calls_lists_every_call_inputs_first():
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(4, name="shared")
    hidden = shared(inputs)
    outputs = shared(keras.layers.ReLU(name="relu")(hidden))
    model = keras.Model(inputs, outputs)
    calls = keras_internals.graph_calls(model)
    assert [layer.name for layer, _, _ in calls] == ["shared", "relu", "shared"]
    assert calls[0][1] == [inputs] and calls[0][2] == [hidden]
    assert calls[-1][2] == [outputs]
