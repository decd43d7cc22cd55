"""A CIFAR-size Wide ResNet, the teacher of the reference CIFAR-10 configs.

`wide_resnet(depth=28, width=2)` is WRN-28-2 (Zagoruyko & Komodakis, 2016)
as in the authors' configs (method reference section 2.3): a 3x3 stem, three
stages of pre-activation basic blocks with `16k, 32k, 64k` channels (strides
1, 2, 2), BatchNorm + LeakyReLU(0.1), and a final BatchNorm + LeakyReLU. Its
signature follows `keras.applications`, so `applications_encoder(
wide_resnet, (32, 32, 3), depth=28, width=2)` builds a headless encoder.

#### References

[1]: Sergey Zagoruyko, Nikos Komodakis. Wide Residual Networks. BMVC 2016.
     https://arxiv.org/abs/1605.07146
"""

import keras

#: The stage outputs multi-level InfoMax taps (`32k`... as the reference's
#: WRN stages 0, 1, 2; the last is after the final BatchNorm + LeakyReLU).
WIDE_RESNET_STAGES = ("stage1_out", "stage2_out", "final_relu")


def _norm_act(x, name):
    # PyTorch BatchNorm defaults (momentum 0.1, eps 1e-5), LeakyReLU(0.1).
    x = keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5, name=f"{name}_bn"
    )(x)
    return keras.layers.LeakyReLU(negative_slope=0.1, name=f"{name}_relu")(x)


def _conv(filters, kernel_size, strides, name):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=keras.initializers.HeNormal(),
        name=name,
    )


def _block(x, filters, strides, dropout_rate, name):
    """Pre-activation basic block; a 1x1 shortcut when the shape changes."""
    activated = _norm_act(x, f"{name}_1")
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, f"{name}_shortcut")(activated)
    else:
        shortcut = x
    y = _conv(filters, 3, strides, f"{name}_conv1")(activated)
    y = _norm_act(y, f"{name}_2")
    if dropout_rate:
        y = keras.layers.Dropout(dropout_rate, name=f"{name}_dropout")(y)
    y = _conv(filters, 3, 1, f"{name}_conv2")(y)
    return keras.layers.Add(name=f"{name}_out")([shortcut, y])


def wide_resnet(
    depth=28,
    width=2,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=(32, 32, 3),
    pooling=None,
    classes=10,
    classifier_activation=None,
    dropout_rate=0.0,
    name=None,
):
    """Builds a Wide ResNet WRN-`depth`-`width` for small images.

    Args:
        depth: total depth, `6n + 4` (28 for WRN-28-2; 10 is the smallest).
        width: widening factor k (channels `16k, 32k, 64k`).
        include_top: whether to add the pooled linear classifier.
        weights: `None` or the path of a weights file to load.
        input_tensor: optional Keras tensor to build the model on.
        input_shape: `(height, width, channels)` of the images.
        pooling: without the top: `None` (the last feature map), `"avg"` or
            `"max"` global pooling.
        classes: number of classes of the top.
        classifier_activation: activation of the top (`None`: logits).
        dropout_rate: dropout between the two convolutions of a block.
        name: the model's name (default `wrn_<depth>_<width>`).

    Returns:
        A functional `keras.Model`; the stage outputs are the layers named
        in `WIDE_RESNET_STAGES`.

    Example:

    >>> model = wide_resnet(depth=10, width=1, classes=3)
    >>> model.output_shape
    (None, 3)
    """
    if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(
            "Expected depth = 6n + 4 with n >= 1 (10, 16, 22, 28, ...). "
            f"Received: depth={depth!r}"
        )
    if not isinstance(width, int) or width < 1:
        raise ValueError(
            f"Expected width to be a positive int. Received: width={width!r}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            "Expected pooling None, 'avg' or 'max'. Received: "
            f"pooling={pooling!r}"
        )
    if input_tensor is None:
        images = keras.Input(shape=tuple(input_shape), name="images")
        inputs = images
    else:
        images = input_tensor
        inputs = keras.utils.get_source_inputs(input_tensor)
    blocks = (depth - 4) // 6
    x = _conv(16, 3, 1, "stem_conv")(images)
    for stage, filters in enumerate((16 * width, 32 * width, 64 * width)):
        for index in range(blocks):
            strides = 2 if stage > 0 and index == 0 else 1
            last = index == blocks - 1
            x = _block(
                x,
                filters,
                strides,
                dropout_rate,
                name=(
                    f"stage{stage + 1}"
                    if last
                    else f"stage{stage + 1}_block{index + 1}"
                ),
            )
    x = _norm_act(x, "final")
    if include_top or pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if include_top:
        x = keras.layers.Dense(
            classes, activation=classifier_activation, name="predictions"
        )(x)
    model = keras.Model(inputs, x, name=name or f"wrn_{depth}_{width}")
    if weights is not None:
        model.load_weights(weights)
    return model


__all__ = [
    "WIDE_RESNET_STAGES",
    "wide_resnet",
]
