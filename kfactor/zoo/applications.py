"""Single-task factorization of stock Keras classifiers.

The paper's CIFAR/ImageNet setting: a single-output classifier (e.g. a
`keras.applications` ResNet50 or MobileNetV2) is one task. `as_task_teacher`
turns it into a teacher `images -> {task: logits}`, `applications_encoder`
builds a headless `keras.applications` network as a common or task encoder,
and `stage_layer_names` picks the stage outputs that multi-level InfoMax
pairs (the reference code taps the last three stages).

```python
classifier = keras.applications.MobileNetV2(weights=None, classes=10,
                                            input_shape=(32, 32, 3))
teacher = as_task_teacher(classifier, task="label")
common = applications_encoder("MobileNetV2", (32, 32, 3))
factorizer = kfactor.Factorizer(
    teacher, common=common,
    tasks={"label": applications_encoder("MobileNetV2", (32, 32, 3),
                                         alpha=0.5)},
    teacher_features=stage_layer_names(teacher),
    common_features=stage_layer_names(common),
    kd="soft_target", kd_temperature=10.0)
```
"""

import logging

from kfactor import keras_internals
from kfactor.zoo.wrn import WIDE_RESNET_STAGES

import keras
from keras import ops

logger = logging.getLogger(__name__)

#: Stage outputs of `keras.applications` families and of kfactor's
#: `wide_resnet`, shallow to deep; the reference taps the last three (ResNet
#: stages 2-4; MobileNetV2 160, 320 and 1280 channels, its
#: `out_indices=(5, 6, 7)`; WRN stages 0-2). Checked in this order: a family
#: matches when all its layers exist.
STAGE_LAYERS = {
    "resnet152": (
        "conv2_block3_out",
        "conv3_block8_out",
        "conv4_block36_out",
        "conv5_block3_out",
    ),
    "resnet101": (
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block23_out",
        "conv5_block3_out",
    ),
    "resnet50v2": (
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
        "post_relu",
    ),
    "resnet50": (
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
        "conv5_block3_out",
    ),
    "mobilenetv2": (
        "block_12_add",
        "block_15_add",
        "block_16_project_BN",
        "out_relu",
    ),
    "wide_resnet": WIDE_RESNET_STAGES,
}
OUTPUT_KINDS = ("auto", "logits", "probabilities")


def _single_input(model):
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ValueError(
            f"Expected a classifier with one image input. Received: model "
            f"'{model.name}' with {len(inputs)} inputs."
        )
    return inputs[0]


def _is_softmax(activation):
    return getattr(activation, "__name__", None) == "softmax"


def _is_linear(activation):
    return activation is None or getattr(activation, "__name__", None) in (
        "linear",
        "identity",
    )


@keras.saving.register_keras_serializable(package="kfactor")
class ProbabilitiesToLogits(keras.layers.Layer):
    """`log(clip(p, eps, 1))`: logits of a softmax output, up to a constant.

    Log-probabilities differ from the true logits by one constant per sample,
    so their softmax, accuracy and soft-target KD are exact; an MSE between
    logits (`kd="mse"`) is not. Used only for classifiers whose graph cannot
    be read.

    Args:
        epsilon: the smallest probability kept (avoids `log(0)`).
    """

    def __init__(self, epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < epsilon < 1.0:
            raise ValueError(
                f"Expected 0 < epsilon < 1. Received: epsilon={epsilon}"
            )
        self.epsilon = epsilon

    def call(self, probabilities):
        probabilities = ops.cast(probabilities, "float32")
        return ops.log(ops.clip(probabilities, self.epsilon, 1.0))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _linear_copy(layer, features):
    """A copy of `layer` without its activation, with the same weights."""
    config = layer.get_config()
    config["activation"] = "linear"
    config["name"] = f"{layer.name}_logits"
    logits_layer = type(layer).from_config(config)
    logits = logits_layer(features)
    logits_layer.set_weights(layer.get_weights())
    logits_layer.trainable = False
    return logits


def _graph_logits(classifier, outputs):
    """Logits of a functional classifier, from its own graph."""
    output = classifier.outputs[0]
    if outputs == "logits":
        return output
    layer, inputs = keras_internals.producer_inputs(output)
    if isinstance(layer, keras.layers.Softmax) or (
        isinstance(layer, keras.layers.Activation)
        and _is_softmax(layer.activation)
    ):
        return inputs[0]
    activation = getattr(layer, "activation", None)
    if hasattr(layer, "activation") and _is_softmax(activation):
        return _linear_copy(layer, inputs[0])
    if hasattr(layer, "activation") and _is_linear(activation):
        return output
    if outputs == "probabilities":
        return ProbabilitiesToLogits(name="logits_from_probabilities")(output)
    raise ValueError(
        f"Cannot tell whether classifier '{classifier.name}' outputs logits "
        "or probabilities: its last layer "
        f"'{layer.name}' ({type(layer).__name__}) is neither a softmax nor "
        "a layer with a linear or softmax activation. Fix: pass "
        "outputs='logits' or outputs='probabilities'."
    )


def as_task_teacher(
    classifier, task="label", outputs="auto", input_shape=None, name=None
):
    """Wraps a single-output classifier as a one-task teacher.

    The teacher maps images to `{task: logits}`, what `kfactor.Factorizer`
    reads. For a functional classifier (every `keras.applications` model)
    the teacher reuses the classifier's graph, so its layers, e.g. the stage
    outputs of `stage_layer_names`, can be tapped by name, and the
    `"auto"` InfoMax feature is the pooled feature the classifier head reads.

    Logits are recovered from the graph: a final `Softmax` or
    `Activation("softmax")` layer is dropped; a final layer with a softmax
    activation (`keras.applications`' default `classifier_activation=
    "softmax"` Dense `predictions`) is replaced by a linear copy with the same
    weights, named `<layer>_logits`. The copy's weights are copied, not
    shared: the teacher is frozen, so this is exact.

    Args:
        classifier: a Keras model images -> `[batch, classes]` (logits or
            softmax probabilities).
        task: the name of the one task (the label key of the dataset).
        outputs: `"auto"` (read the graph), `"logits"` (use the output as
            is) or `"probabilities"` (softmax output: recover logits from
            the graph, or take log-probabilities when the graph cannot be
            read, which is exact up to a constant per sample, see
            `ProbabilitiesToLogits`).
        input_shape: `(height, width, channels)`, only for a classifier that
            is not functional and has no input shape of its own.
        name: the teacher's name (default `<classifier>_teacher`).

    Returns:
        A functional `keras.Model` images -> `{task: logits}` that shares the
        classifier's layers.

    Example:

    >>> classifier = keras.applications.MobileNetV2(
    ...     input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=3)
    >>> teacher = as_task_teacher(classifier, task="label")
    >>> teacher.output["label"].shape
    (None, 3)
    """
    if outputs not in OUTPUT_KINDS:
        raise ValueError(
            f"Expected outputs in {OUTPUT_KINDS}. Received: outputs={outputs!r}"
        )
    if not isinstance(classifier, keras.Model):
        raise TypeError(
            "Expected classifier to be a keras.Model images -> [batch, "
            f"classes]. Received: {type(classifier).__name__}"
        )
    name = name or f"{classifier.name}_teacher"
    if keras_internals.is_functional(classifier):
        if len(classifier.outputs) != 1:
            raise ValueError(
                "Expected a single-output classifier. Received: "
                f"'{classifier.name}' with {len(classifier.outputs)} "
                "outputs. Fix: a multi-task model should map images to "
                "{task: logits}; pass it to kfactor.Factorizer directly."
            )
        images = _single_input(classifier)
        logits = _graph_logits(classifier, outputs)
    else:
        if outputs == "auto":
            raise ValueError(
                f"Classifier '{classifier.name}' is not a functional model, "
                "so kfactor cannot tell logits from probabilities. Fix: pass "
                "outputs='logits' or outputs='probabilities'."
            )
        if input_shape is None:
            try:
                input_shape = tuple(classifier.input_shape[1:])
            except (AttributeError, ValueError, TypeError):
                input_shape = None
        if input_shape is None or None in tuple(input_shape):
            raise ValueError(
                f"Expected classifier '{classifier.name}' to have a fixed "
                f"input shape. Received: input_shape={input_shape}. Fix: "
                "pass input_shape=(height, width, channels)."
            )
        images = keras.Input(shape=tuple(input_shape), name="images")
        logits = classifier(images)
        if outputs == "probabilities":
            logits = ProbabilitiesToLogits(name="logits_from_probabilities")(
                logits
            )
        # The InfoMax feature of an opaque teacher is its logits.
        logits = keras.layers.Identity(name=f"{task}_logits")(logits)
    if len(logits.shape) != 2:
        raise ValueError(
            "Expected the classifier to output [batch, classes]. Received: "
            f"shape={tuple(logits.shape)}"
        )
    return keras.Model(images, {task: logits}, name=name)


def _constructor(constructor):
    if isinstance(constructor, str):
        found = getattr(keras.applications, constructor, None)
        if found is None:
            raise ValueError(
                f"No keras.applications.{constructor}. Fix: pass a "
                "constructor such as keras.applications.MobileNetV2 or its "
                "name 'MobileNetV2'."
            )
        return found
    if not callable(constructor):
        raise TypeError(
            "Expected constructor to be a keras.applications constructor or "
            f"its name. Received: {constructor!r}"
        )
    return constructor


def applications_encoder(
    constructor,
    input_shape,
    pooling="avg",
    latent_dim=None,
    preprocessing=None,
    weights=None,
    name=None,
    **kwargs,
):
    """A headless `keras.applications` network as a factor encoder.

    The result is one flat functional model (preprocessing, backbone, pooling
    and optional linear layer), so its stage layers can be tapped by name
    (`Factorizer(common_features=stage_layer_names(encoder))`).

    Args:
        constructor: a `keras.applications` constructor, e.g.
            `keras.applications.MobileNetV2`, or its name `"MobileNetV2"`.
        input_shape: `(height, width, channels)` of the images.
        pooling: `"avg"` or `"max"` global pooling of the last feature map.
        latent_dim: if set, a linear layer `latent` maps the pooled
            features to this size (the common code's size).
        preprocessing: an optional Keras layer applied to the images first,
            e.g. `keras.layers.Rescaling(2.0, offset=-1.0)` for MobileNetV2's
            [-1, 1] inputs when loading pretrained weights.
        weights: `None` (random initialisation; kfactor never downloads) or
            the path of a weights file.
        name: the model's name (default: the backbone's).
        **kwargs: other constructor arguments, e.g. `alpha=0.35`.

    Returns:
        A functional `keras.Model` images -> `[batch, features]`.

    Example:

    >>> encoder = applications_encoder(
    ...     "MobileNetV2", (32, 32, 3), alpha=0.35, latent_dim=16)
    >>> encoder.output_shape
    (None, 16)
    """
    if pooling not in ("avg", "max"):
        raise ValueError(
            "Expected pooling='avg' or 'max' (an encoder outputs a vector). "
            f"Received: pooling={pooling!r}"
        )
    if weights == "imagenet":
        raise ValueError(
            "kfactor never downloads weights. Received: weights='imagenet'. "
            "Fix: pass weights=None, or the path of a weights file you "
            "downloaded."
        )
    if len(tuple(input_shape)) != 3:
        raise ValueError(
            "Expected input_shape=(height, width, channels). "
            f"Received: input_shape={input_shape}"
        )
    images = keras.Input(shape=tuple(input_shape), name="images")
    x = images if preprocessing is None else preprocessing(images)
    backbone = _constructor(constructor)(
        include_top=False,
        weights=weights,
        input_tensor=x,
        input_shape=tuple(input_shape),
        pooling=pooling,
        **kwargs,
    )
    features = backbone.output
    if latent_dim is not None:
        features = keras.layers.Dense(latent_dim, name="latent")(features)
    return keras.Model(images, features, name=name or backbone.name)


def _spatial_stage_ends(model):
    """Last layer of each spatial resolution of a functional model's graph."""
    ends = {}
    for layer in model.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            ends[tuple(shape[1:3])] = layer.name
    return list(ends.values())


def stage_layer_names(model, num_stages=3):
    """Names of the last `num_stages` stage outputs of an image model.

    For the families of `STAGE_LAYERS` (`keras.applications` ResNet50/101/
    152, ResNet50V2, MobileNetV2; `kfactor.zoo.wide_resnet`) the known stage
    outputs; for any other
    functional model, the last layer at each spatial resolution.

    Args:
        model: a functional model whose graph holds the stages: a
            `keras.applications` model, an `applications_encoder`, or an
            `as_task_teacher` teacher of one.
        num_stages: how many stages, deepest last.

    Returns:
        A list of layer names, shallow to deep.

    Example:

    >>> encoder = applications_encoder("MobileNetV2", (32, 32, 3), alpha=0.35)
    >>> stage_layer_names(encoder)
    ['block_15_add', 'block_16_project_BN', 'out_relu']
    """
    if not isinstance(num_stages, int) or num_stages < 1:
        raise ValueError(
            "Expected num_stages to be a positive int. Received: "
            f"num_stages={num_stages!r}"
        )
    if not keras_internals.is_functional(model):
        raise ValueError(
            f"Cannot list the stages of '{model.name}': only functional "
            "models expose their layers. Fix: pass the layer names yourself."
        )
    names = {layer.name for layer in model.layers}
    stages = None
    for family, layers in STAGE_LAYERS.items():
        if all(layer in names for layer in layers):
            stages = list(layers)
            logger.info("Model '%s' has %s stages.", model.name, family)
            break
    if stages is None:
        stages = _spatial_stage_ends(model)
    if num_stages > len(stages):
        raise ValueError(
            f"Expected num_stages <= {len(stages)}, the stages found in "
            f"'{model.name}': {stages}. Received: num_stages={num_stages}"
        )
    return stages[-num_stages:]


__all__ = [
    "OUTPUT_KINDS",
    "STAGE_LAYERS",
    "ProbabilitiesToLogits",
    "applications_encoder",
    "as_task_teacher",
    "stage_layer_names",
]
