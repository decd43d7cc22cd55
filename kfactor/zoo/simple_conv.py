"""Model builders: the SimpleConv64 encoder family and a multi-task teacher.

`simple_conv64` is the encoder of the dSprites configuration of the authors'
code (six `MatmulConv2D(k=4, s=2)` + ReLU, flatten, linear), written with Keras
layers so that any user can read, change or replace it. With
`padding="same"`, a k=4/s=2 convolution on an even size pads one pixel on each
side, exactly PyTorch's `padding=1`. Its convolutions are
`kfactor.layers.MatmulConv2D`: `keras.layers.Conv2D` with the same weights and
results, which runs the last one (2x2 -> 1x1, 12 of 16 taps on padding) as a
matmul.

Inputs are float images in [0, 1]; the first layer rescales them to [-1, 1],
the normalisation `(x - 0.5) / 0.5` of the reference pipeline, so exported
factor networks take raw [0, 1] images.
"""

from kfactor import keras_internals
from kfactor.layers.conv import MatmulConv2D
from kfactor.layers.heads import classification_head
from kfactor.layers.normalization import FusedBatchNormalization

import keras

#: The default input: 64x64 grey images (dSprites' size; the six
#: stride-2 convolutions bring 64 pixels down to 1).
INPUT_SHAPE = (64, 64, 1)

FULL_WIDTHS = (32, 32, 64, 128, 256, 256)
NARROW_WIDTHS = (16, 16, 32, 32, 64, 64)


def scaled_widths(widths, width_multiplier):
    """Multiplies every width by `width_multiplier`, keeping each at least 1.

    Example:

    >>> scaled_widths((32, 64), 0.5)
    (16, 32)
    """
    if width_multiplier <= 0:
        raise ValueError(
            "Expected width_multiplier > 0. "
            f"Received: width_multiplier={width_multiplier}"
        )
    return tuple(max(1, int(round(w * width_multiplier))) for w in widths)


NORMALIZATIONS = (None, "batch", "keras_batch")


def _conv_block(x, width, normalization, name):
    """One k=4 s=2 convolution + ReLU, batch-normalized if asked."""
    if normalization is None:
        return MatmulConv2D(
            width,
            kernel_size=4,
            strides=2,
            padding="same",
            activation="relu",
            name=name,
        )(x)
    x = MatmulConv2D(
        width,
        kernel_size=4,
        strides=2,
        padding="same",
        use_bias=False,
        name=name,
    )(x)
    if normalization == "batch":
        x = FusedBatchNormalization(name=f"{name}_bn")(x)
    else:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def simple_conv64(
    latent_dim=10,
    widths=FULL_WIDTHS,
    width_multiplier=1.0,
    input_shape=INPUT_SHAPE,
    normalization=None,
    name="simple_conv64",
):
    """Builds a SimpleConv64 encoder: six k=4 s=2 convolutions, then linear.

    Args:
        latent_dim: size of the final linear layer's output, or `None` to
            return the flattened convolutional features (what a `TaskFactor`
            puts its own code layer on, as the reference's Gaussian encoder).
        widths: output channels of the six convolutions.
        width_multiplier: scales every width (e.g. 0.5 for half width).
        input_shape: `(height, width, channels)` of the [0, 1] input images.
        normalization: `None` (the reference: convolution + bias + ReLU),
            `"batch"`: each convolution without bias, then batch
            normalization, then ReLU (what lets the multi-task teacher
            leave the `shape` plateau within the demo's budget; see
            `kfactor.lab.teacher`). The layer is
            `kfactor.layers.normalization.FusedBatchNormalization`:
            `keras.layers.BatchNormalization` trained on TensorFlow's
            one-kernel fused batch norm, Keras's own code in inference (so
            saved factors compute exactly what the in-memory networks do).
            `"keras_batch"`: the same with `keras.layers.BatchNormalization`.
        name: the model's name.

    Returns:
        A functional `keras.Model` mapping images to a vector.

    Example:

    >>> encoder = simple_conv64(latent_dim=10, widths=NARROW_WIDTHS)
    >>> encoder.output_shape
    (None, 10)
    """
    widths = scaled_widths(widths, width_multiplier)
    if len(input_shape) != 3:
        raise ValueError(
            "Expected input_shape=(height, width, channels). "
            f"Received: input_shape={input_shape}"
        )
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"Expected normalization in {NORMALIZATIONS}. "
            f"Received: normalization={normalization!r}"
        )
    images = keras.Input(shape=input_shape, name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_symmetric")(images)
    for index, width in enumerate(widths):
        x = _conv_block(x, width, normalization, name=f"conv{index + 1}")
    x = keras.layers.Flatten(name="flatten")(x)
    if latent_dim is not None:
        x = keras.layers.Dense(latent_dim, name="latent")(x)
    return keras.Model(images, x, name=name)


def multitask_teacher(num_classes, encoder=None, name="teacher"):
    """Builds a multi-task classifier: a shared encoder + a linear head a task.

    Args:
        num_classes: dict task name -> number of classes.
        encoder: a functional encoder (images -> latent vector); a default
            full-width `simple_conv64(latent_dim=10)` when `None`.
        name: the model's name.

    Returns:
        A functional `keras.Model` mapping images to `{task: logits}`. Its
        latent is the input of the heads (`kfactor.Factorizer` finds it).

    Example:

    >>> teacher = multitask_teacher({"shape": 3, "scale": 6},
    ...     encoder=simple_conv64(widths=NARROW_WIDTHS))
    >>> sorted(teacher.output)
    ['scale', 'shape']
    """
    if not isinstance(num_classes, dict) or not num_classes:
        raise ValueError(
            "Expected num_classes as a non-empty dict task -> classes. "
            f"Received: num_classes={num_classes!r}"
        )
    encoder = encoder if encoder is not None else simple_conv64()
    if keras_internals.is_functional(encoder):
        # Reuse the functional encoder's graph, so its layers are the
        # teacher's own (InfoMax can tap them by name).
        images, latent = encoder.input, encoder.output
    else:
        images = keras.Input(shape=encoder.input_shape[1:], name="images")
        latent = encoder(images)
    logits = {
        task: classification_head(classes, name=task)(latent)
        for task, classes in num_classes.items()
    }
    return keras.Model(images, logits, name=name)


def copy_weights_by_name(source, target):
    """Copies every weighted layer of `target` from `source`'s namesake.

    Used to start the common factor from the teacher's backbone: a
    `simple_conv64` built with the teacher encoder's arguments has the same
    layer names and shapes as the teacher's encoder layers (which a
    `multitask_teacher` keeps in its own graph).

    Args:
        source: a Keras model holding layers of the same names (e.g. the
            teacher).
        target: the Keras model to initialise (e.g. the common encoder).

    Returns:
        The names of the layers copied.

    Raises:
        ValueError: naming every weighted layer of `target` that `source`
            lacks or holds with other weight shapes.

    Example:

    >>> teacher = multitask_teacher({"shape": 3},
    ...     encoder=simple_conv64(widths=NARROW_WIDTHS))
    >>> common = simple_conv64(widths=NARROW_WIDTHS, name="common")
    >>> len(copy_weights_by_name(teacher, common))
    7
    """
    sources = {layer.name: layer for layer in source.layers}
    copied, problems = [], []
    for layer in target.layers:
        if not layer.weights:
            continue
        match = sources.get(layer.name)
        if match is None:
            problems.append(f"{layer.name} (not in {source.name})")
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        source_shapes = [tuple(w.shape) for w in match.weights]
        if shapes != source_shapes:
            problems.append(
                f"{layer.name} (shapes {shapes} vs {source_shapes})"
            )
            continue
        copied.append(layer.name)
    if problems:
        raise ValueError(
            f"Cannot initialise {target.name} from {source.name}: "
            f"{', '.join(problems)}. Fix: build the target with the same "
            "architecture (widths, latent size, normalization) as the "
            "source's encoder."
        )
    for name in copied:
        target.get_layer(name).set_weights(sources[name].get_weights())
    return copied


__all__ = [
    "FULL_WIDTHS",
    "INPUT_SHAPE",
    "NARROW_WIDTHS",
    "NORMALIZATIONS",
    "copy_weights_by_name",
    "multitask_teacher",
    "scaled_widths",
    "simple_conv64",
]
