"""Folding batch normalization into the layer before it, for inference.

In inference a batch normalization layer is an affine map per channel,
`gamma * (x - mean) / sqrt(variance + epsilon) + beta`. When `x` is the
output of a convolution or dense layer with no activation, and nothing else
reads it, that map folds into the layer's kernel and bias: the pair becomes
one convolution with a bias, which TensorFlow's CPU kernels fuse with the
ReLU that follows. Keras computes inference batch normalization as
separate element-wise passes over the activations; on the demo's assembled
factors at batch 128 they cost about a third of the time.

`fold_batch_norm(model)` returns an inference-only copy of a functional or
`Sequential` model with every such pair folded (nested functional and
`Sequential` models too). Layers it does not fold are shared with `model`,
not copied. `save_factors` writes the SavedModels of factors from folded
copies, so loaded factors, assembled models and their exports are folded.

The copy computes the same function to float32 rounding (the fold is done
in float64): about 1e-6 of the logits' scale on the demo's factors.
Calling it with `training=True` does not normalize by batch statistics:
train the original model, fold for inference.
"""

import logging

from kfactor import keras_internals
from kfactor.factors import checks
from kfactor.layers.normalization import FoldedBatchNormalization

import keras
import numpy as np

logger = logging.getLogger(__name__)

#: Largest |folded - unfolded| `fold_if_possible` accepts, as a fraction of
#: the outputs' scale `max(1, max |outputs|)`; the fold's float32 rounding
#: is about 1e-6 of it.
TOLERANCE = 1e-5

#: Layers whose output channels are the last kernel axis (and the bias):
#: convolutions (transposed ones are other classes) and dense layers.
_LAST_AXIS_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Dense,
)
#: Depthwise convolutions: kernel `[..., in, multiplier]`.
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def _is_linear(layer):
    activation = getattr(layer, "activation", None)
    return activation in (None, keras.activations.linear)


def _out_channel_scale_shape(layer):
    """How a per-output-channel vector broadcasts over `layer.kernel`, or
    None when `layer` is not a foldable kind."""
    if isinstance(layer, _DEPTHWISE):
        # kernel [..., in, multiplier]; output channel c * multiplier + m.
        return tuple(layer.kernel.shape[-2:])
    if isinstance(layer, _LAST_AXIS_LAYERS):
        return (layer.kernel.shape[-1],)
    return None


def _channels_last(layer):
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def _foldable_norm(norm, rank):
    if not isinstance(norm, keras.layers.BatchNormalization):
        return False
    return (
        norm.axis in (-1, rank - 1)
        and not getattr(norm, "renorm", False)
        and norm.dtype_policy.compute_dtype == "float32"
    )


def _foldable_producer(layer):
    return (
        _out_channel_scale_shape(layer) is not None
        and _is_linear(layer)
        and _channels_last(layer)
        and layer.dtype_policy.compute_dtype == "float32"
        and getattr(layer, "lora_enabled", False) is False
        and getattr(layer, "quantization_mode", None) is None
    )


def batch_norm_pairs(model):
    """The `(layer, batch_norm)` pairs `fold_batch_norm` folds in `model`.

    A pair is a batch normalization layer over the last axis whose only
    input is the output of a convolution (`Conv1D/2D/3D`,
    `DepthwiseConv1D/2D`, channels last) or `Dense` layer with no
    activation, that output being read by nothing else. Each of the two is
    called once in `model`'s graph. Nested functional and `Sequential`
    models are searched too. All layers compute in float32.

    Args:
        model: a functional or `Sequential` Keras model.

    Returns:
        A list of `(layer, batch_norm)` layer pairs, outer model first.
    """
    return [(layer, norm) for layer, norm, _ in _pairs(model)]


def _pairs(model):
    """`(layer, batch_norm, layer's input shape)` of each foldable pair."""
    graph = _functional_graph(model)
    calls = keras_internals.graph_calls(graph)
    readers, call_counts = {}, {}
    for layer, inputs, _ in calls:
        call_counts[id(layer)] = call_counts.get(id(layer), 0) + 1
        for tensor in inputs:
            readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    for tensor in keras.tree.flatten(graph.outputs):
        readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    pairs = []
    for layer, inputs, _ in calls:
        if _is_graph_model(layer):
            pairs.extend(_pairs(layer))
            continue
        if len(inputs) != 1 or call_counts[id(layer)] != 1:
            continue
        produced = keras_internals.producer_inputs(inputs[0])
        if produced is None or len(produced[1]) != 1:
            continue
        producer, (producer_input,) = produced
        if (
            _foldable_norm(layer, len(inputs[0].shape))
            and _foldable_producer(producer)
            and call_counts.get(id(producer)) == 1
            and readers[id(inputs[0])] == 1
        ):
            pairs.append((producer, layer, producer_input.shape))
    return pairs


def _is_graph_model(layer):
    return keras_internals.is_functional(layer) or isinstance(
        layer, keras.Sequential
    )


def _functional_graph(model):
    if isinstance(model, keras.Sequential):
        if not model.built or not model.inputs:
            raise ValueError(
                "Expected a built Sequential model with an Input. Received: "
                f"{model.name!r}, not built. Fix: build it first "
                "(model.build(input_shape) or call it on a batch)."
            )
        return keras.Model(model.inputs, model.outputs)
    if not keras_internals.is_functional(model):
        raise TypeError(
            "Expected a functional or Sequential Keras model. Received: "
            f"{type(model).__name__} {getattr(model, 'name', '')!r}, whose "
            "layer graph Keras does not expose. Fix: build the network "
            "with the functional API (keras.Model(inputs, outputs)), or "
            "use it unfolded."
        )
    return model


def folded_weights(layer, norm):
    """`(kernel, bias)` of `layer` followed by `norm` in inference, as one
    layer: float32 arrays computed in float64."""
    kernel = np.asarray(layer.kernel, "float64")
    bias = (
        np.asarray(layer.bias, "float64")
        if layer.use_bias
        else np.zeros(int(np.prod(_out_channel_scale_shape(layer))))
    )
    channels = bias.shape[0]
    gamma = (
        np.asarray(norm.gamma, "float64") if norm.scale else np.ones(channels)
    )
    beta = (
        np.asarray(norm.beta, "float64") if norm.center else np.zeros(channels)
    )
    mean = np.asarray(norm.moving_mean, "float64")
    variance = np.asarray(norm.moving_variance, "float64")
    scale = gamma / np.sqrt(variance + norm.epsilon)
    shape = _out_channel_scale_shape(layer)
    kernel = kernel * scale.reshape(shape)
    bias = (bias - mean) * scale + beta
    return kernel.astype("float32"), bias.astype("float32")


def _folded_copy(layer, norm, input_shape):
    config = dict(layer.get_config(), use_bias=True)
    copy = layer.__class__.from_config(config)
    copy.build(input_shape)
    copy.set_weights(folded_weights(layer, norm))
    copy.trainable = False
    return copy


def _identity(norm):
    return FoldedBatchNormalization(name=norm.name)


def fold_batch_norm(model):
    """An inference copy of `model` with batch normalization folded in.

    Each pair of `batch_norm_pairs(model)` becomes one layer of the
    first's kind, with the folded kernel and a bias; the batch
    normalization becomes the identity (`kfactor.layers.normalization.
    FoldedBatchNormalization`, same name). Every other layer is shared with
    `model` (not copied), so the copy costs only the folded kernels'
    memory.

    Args:
        model: a functional or `Sequential` Keras model, built.

    Returns:
        A functional model (of `model`'s class when it is a functional
        subclass) computing `model(x, training=False)` to float32
        rounding. With no pair to fold, `model` itself.

    Raises:
        TypeError: `model` is a subclassed model (its graph is not known).

    Example:

    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3)(inputs)
    >>> x = keras.layers.BatchNormalization()(x)
    >>> model = keras.Model(inputs, keras.layers.ReLU()(x))
    >>> folded = fold_batch_norm(model)
    >>> [type(layer).__name__ for layer in folded.layers]
    ['InputLayer', 'Conv2D', 'FoldedBatchNormalization', 'ReLU']
    """
    pairs = _pairs(model)
    if not pairs:
        return model
    replacements = {}
    for layer, norm, input_shape in pairs:
        replacements[id(layer)] = _folded_copy(layer, norm, input_shape)
        replacements[id(norm)] = _identity(norm)

    def clone(layer):
        return replacements.get(id(layer), layer)

    folded = keras.models.clone_model(
        model, clone_function=clone, recursive=True
    )
    logger.debug(
        "Folded %d batch normalizations of %s.", len(pairs), model.name
    )
    return folded


def fold_if_possible(model, images):
    """`fold_batch_norm(model)` checked on `images`, else `model` itself.

    `model` is returned unfolded when it is a layer or subclassed model
    whose graph is not known, or when the folded copy's outputs on
    `images` differ from `model`'s by more than `TOLERANCE` of their
    scale (a subclass of a foldable layer whose `call` does not use its
    kernel and bias as the stock layer does): logged as a warning, since
    the factor still works, only slower.

    Args:
        model: a Keras model or layer.
        images: a batch `model` takes (e.g. the manifest's probe images).
    """
    if not (
        keras_internals.is_functional(model)
        or (
            isinstance(model, keras.Sequential) and model.built and model.inputs
        )
    ):
        return model
    folded = fold_batch_norm(model)
    if folded is model:
        return model
    expected = keras.tree.flatten(model(images, training=False))
    got = keras.tree.flatten(folded(images, training=False))
    for want, have in zip(expected, got):
        scale = checks.logit_scale(want)
        difference = checks.max_abs_diff(have, want)
        if not difference <= TOLERANCE * scale:
            logger.warning(
                "Not folding the batch normalization of %s: the folded copy "
                "differs from it by %.3g (allowed %.3g). A layer of it may "
                "subclass Conv/Dense with its own use of the kernel or "
                "bias; it is kept unfolded (slower inference, same "
                "results).",
                model.name,
                difference,
                TOLERANCE * scale,
            )
            return model
    return folded


__all__ = [
    "TOLERANCE",
    "batch_norm_pairs",
    "fold_batch_norm",
    "fold_if_possible",
    "folded_weights",
]
