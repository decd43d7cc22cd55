"""The Keras internals kfactor reads, in one place.

## Functional graphs

Public Keras gives a layer's output and input only for its *first* call
(`layer.output`, `layer.input`: node 0). A teacher is often built from layers
that were first called in another model (a classifier re-headed by
`kfactor.zoo.as_task_teacher`, a layer shared with a sub-model), and then
`keras.Model(teacher.inputs, teacher.get_layer(name).output)` fails with
"not connected to `inputs`". Reading the node that belongs to *this* model's
graph needs three private attributes: `tensor._keras_history`,
`layer._inbound_nodes` and `model._nodes` (keyed `f"{id(layer)}_ib-{i}"`).
Listing every call of a graph (to fold batch normalization) reads
`model._nodes_by_depth`, the order Keras itself runs the graph in.

## `keras.layers.TFSMLayer`

A TFSMLayer calls one endpoint of its SavedModel (`call_endpoint_fn`); a
task factor also serves `encode`. The loaded SavedModel is the private
`TFSMLayer._reloaded_obj` (`saved_model_of`).

## Optimizers

Keras's Adam keeps its slot variables in the private lists `_momentums`
and `_velocities`, indexed by the private
`BaseOptimizer._get_variable_index` (`adam_slots`).

These attributes are used nowhere else in kfactor;
`tests/test_keras_internals.py` checks them against the Keras version in
`KERAS_VERSION_CHECKED`.
"""

#: The Keras release these internals were last checked against.
KERAS_VERSION_CHECKED = "3.15"


def is_functional(model):
    """Whether `model` is a functional model, built as a graph of layers.

    A `keras.Sequential` model is not (Keras 3.15 keeps its graph in a
    wrapped functional model): wrap it as `keras.Model(seq.inputs,
    seq.outputs)` to read its layers.
    """
    return hasattr(model, "_nodes")


def producer_inputs(tensor):
    """The input tensors of the layer call that produced `tensor`.

    Args:
        tensor: a symbolic tensor of a functional graph.

    Returns:
        `(layer, [input tensors])`, or `None` when `tensor` has no history
        (it is not a layer's output).
    """
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    layer, node_index, _ = history
    return layer, list(layer._inbound_nodes[node_index].input_tensors)


def layer_output_in(model, layer):
    """The output of `layer`'s first call that is part of `model`'s graph.

    Args:
        model: a functional model (`is_functional`).
        layer: one of its layers.

    Returns:
        The symbolic output tensor, or `None` when no call of `layer`
        belongs to `model`'s graph.
    """
    graph_nodes = getattr(model, "_nodes", set())
    for index, node in enumerate(layer._inbound_nodes):
        if f"{id(layer)}_ib-{index}" in graph_nodes:
            return node.output_tensors[0]
    return None


def graph_calls(model):
    """Every layer call of a functional model's graph, inputs first.

    Args:
        model: a functional model (`is_functional`).

    Returns:
        A list of `(layer, [input tensors], [output tensors])`, one per
        call (a layer called twice appears twice), ordered from the model's
        inputs to its outputs; the input layers are left out.
    """
    calls = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            calls.append(
                (
                    node.operation,
                    list(node.input_tensors),
                    list(node.output_tensors),
                )
            )
    return calls


def saved_model_of(tfsm_layer):
    """The SavedModel object a `keras.layers.TFSMLayer` loaded.

    Args:
        tfsm_layer: a `keras.layers.TFSMLayer` (or subclass) instance.

    Returns:
        What `tf.saved_model.load(tfsm_layer.filepath)` returned when the
        layer was built: its endpoints are attributes.
    """
    return tfsm_layer._reloaded_obj


def adam_slots(optimizer, variable):
    """`(momentum, velocity)`: `variable`'s slot variables in a Keras Adam
    (the lookup Keras's own `Adam.update_step` makes)."""
    index = optimizer._get_variable_index(variable)
    return optimizer._momentums[index], optimizer._velocities[index]


__all__ = [
    "KERAS_VERSION_CHECKED",
    "adam_slots",
    "graph_calls",
    "is_functional",
    "layer_output_in",
    "producer_inputs",
    "saved_model_of",
]
