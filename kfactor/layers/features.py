"""Reading a teacher: its task logits and the features InfoMax pairs with.

A teacher is any Keras model mapping images to `{task: logits}`. InfoMax
needs a feature of the teacher: by default the one tensor that every task
head reads (the latent of a multi-task classifier), found in the functional
graph; or named intermediate layers; or, for a teacher whose graph cannot be
read (a subclassed model), its concatenated logits.
"""

import logging

from kfactor import keras_internals

import keras
import numpy as np
from keras import ops

logger = logging.getLogger(__name__)


def describe_outputs(outputs):
    """A short text of a model output structure, for error messages."""
    if isinstance(outputs, dict):
        return "{" + ", ".join(f"{k!r}: ..." for k in outputs) + "}"
    return type(outputs).__name__


def probe_teacher(teacher, image_shape):
    """Calls `teacher` on zeros and returns `{task: num_classes}`.

    Raises:
        ValueError: if the teacher's output is not a dict of `[batch, classes]`
            logits.
    """
    outputs = teacher(np.zeros((2, *image_shape), "float32"), training=False)
    if not isinstance(outputs, dict) or not outputs:
        raise ValueError(
            "Expected the teacher to return a dict {task_name: logits}. "
            f"Received: {describe_outputs(outputs)} from teacher "
            f"'{teacher.name}'. Fix: wrap a single-output classifier with "
            "keras.Model(inputs, {'task': model(inputs)})."
        )
    num_classes = {}
    for task, logits in outputs.items():
        if len(logits.shape) != 2:
            raise ValueError(
                f"Expected teacher output '{task}' to be logits shaped "
                f"[batch, classes]. Received: shape={tuple(logits.shape)}"
            )
        num_classes[task] = int(logits.shape[-1])
    return num_classes


def head_input(model):
    """The one tensor that every output layer of a functional `model` reads.

    Returns `None` when there is no such single tensor (or no graph).
    """
    outputs = getattr(model, "outputs", None)
    if not outputs:
        return None
    found = None
    for tensor in keras.tree.flatten(outputs):
        producer = keras_internals.producer_inputs(tensor)
        if producer is None:
            return None
        _, inputs = producer
        if len(inputs) != 1 or (found is not None and inputs[0] is not found):
            return None
        found = inputs[0]
    return found


def _layer_output(model, layer_name):
    """The symbolic output of layer `layer_name` in `model`'s own graph."""
    try:
        layer = model.get_layer(layer_name)
    except ValueError as error:
        names = [sub.name for sub in getattr(model, "layers", [])]
        raise ValueError(
            f"No layer {layer_name!r} in model '{model.name}'. Its layers: "
            f"{names}"
        ) from error
    output = keras_internals.layer_output_in(model, layer)
    if output is not None:
        return output
    raise ValueError(
        f"Layer {layer_name!r} is not part of the graph of model "
        f"'{model.name}', so its output cannot be read."
    )


def feature_model(model, layer_names, name):
    """A functional model: images -> (model outputs, [features])."""
    if not keras_internals.is_functional(model):
        raise ValueError(
            f"Cannot read layers {list(layer_names)} from '{model.name}': "
            "only functional models expose intermediate layers. Fix: build "
            "the model with the functional API (a Sequential model `seq`: "
            "keras.Model(seq.inputs, seq.outputs))."
        )
    features = [_layer_output(model, layer) for layer in layer_names]
    return keras.Model(model.input, [model.output, features], name=name)


class TeacherReader(keras.layers.Layer):
    """Runs the frozen teacher; returns `(logits dict, [features])`.

    Args:
        teacher: Keras model images -> `{task: logits}`.
        feature_layers: `"auto"` (the heads' shared input, or the concatenated
            logits when the graph cannot be read) or a list of layer names.
    """

    def __init__(self, teacher, feature_layers="auto", **kwargs):
        super().__init__(**kwargs)
        self.teacher = teacher
        self.feature_layers = feature_layers
        self.extractor = None
        if feature_layers == "auto":
            latent = head_input(teacher)
            if latent is not None:
                self.extractor = keras.Model(
                    teacher.input,
                    [teacher.output, [latent]],
                    name=f"{teacher.name}_reader",
                )
            else:
                logger.info(
                    "Teacher '%s' has no single head input in a functional "
                    "graph; InfoMax pairs the common code with its "
                    "concatenated logits.",
                    teacher.name,
                )
        else:
            self.extractor = feature_model(
                teacher, feature_layers, f"{teacher.name}_reader"
            )
        self.trainable = False

    def call(self, images):
        if self.extractor is None:
            logits = self.teacher(images, training=False)
            features = [ops.concatenate(list(logits.values()), axis=-1)]
        else:
            logits, features = self.extractor(images, training=False)
        logits = {k: ops.stop_gradient(v) for k, v in logits.items()}
        features = [flatten_feature(ops.stop_gradient(f)) for f in features]
        return logits, features


def flatten_feature(feature):
    """Global-average-pools a `[batch, h, w, c]` map; vectors pass through."""
    if len(feature.shape) == 4:
        return ops.mean(feature, axis=(1, 2))
    if len(feature.shape) != 2:
        raise ValueError(
            "Expected an InfoMax feature shaped [batch, dim] or [batch, h, w, "
            f"c]. Received: shape={tuple(feature.shape)}"
        )
    return feature


__all__ = [
    "TeacherReader",
    "describe_outputs",
    "feature_model",
    "flatten_feature",
    "head_input",
    "probe_teacher",
]
