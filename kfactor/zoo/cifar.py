"""CIFAR-size ResNet-18 and MobileNetV2: the reference's student networks.

The reference CIFAR-10 configs factorize a WRN-28-2 teacher (`wrn.py`) into
a ResNet-18 common factor and MobileNetV2 task factors, both in their CIFAR
form: a 3x3 stride-1 stem and no stem max-pool (ResNet-18), and stride 1 in
the stem and the 24-channel stage (MobileNetV2), so that 32x32 images end
on a 4x4 map. `keras.applications` has only the ImageNet forms, which
shrink 32x32 images to 1x1.

Both are functional (their stage outputs can be tapped by name for
multi-level InfoMax), with PyTorch's BatchNorm defaults (momentum 0.1,
epsilon 1e-5) and `padding="same"` convolutions.

#### References

[1]: Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun. Deep Residual
     Learning for Image Recognition. CVPR 2016.
     https://arxiv.org/abs/1512.03385
[2]: Mark Sandler, Andrew Howard, Menglong Zhu, Andrey Zhmoginov,
     Liang-Chieh Chen. MobileNetV2: Inverted Residuals and Linear
     Bottlenecks. CVPR 2018. https://arxiv.org/abs/1801.04381
"""

import keras

#: The stage outputs of `resnet18_cifar` multi-level InfoMax taps (the
#: reference's ResNet stages 2-4; the last is before the pooling).
RESNET18_CIFAR_STAGES = ("layer2_out", "layer3_out", "layer4_out")
#: `(expansion, channels, blocks, stride)` of MobileNetV2's bottleneck
#: stages, CIFAR form (stride 1 in the 24-channel stage).
MOBILENET_V2_CIFAR_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _batch_norm(name):
    return keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5, name=name
    )


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


def _images(input_tensor, input_shape):
    if input_tensor is None:
        images = keras.Input(shape=tuple(input_shape), name="images")
        return images, images
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def _pool(x, pooling):
    if pooling not in (None, "avg"):
        raise ValueError(
            f"Expected pooling None or 'avg'. Received: pooling={pooling!r}"
        )
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return x


def _basic_block(x, filters, strides, name):
    y = _conv(filters, 3, strides, f"{name}_conv1")(x)
    y = _batch_norm(f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(filters, 3, 1, f"{name}_conv2")(y)
    y = _batch_norm(f"{name}_bn2")(y)
    if strides != 1 or x.shape[-1] != filters:
        x = _conv(filters, 1, strides, f"{name}_shortcut_conv")(x)
        x = _batch_norm(f"{name}_shortcut_bn")(x)
    y = keras.layers.Add(name=f"{name}_add")([x, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def resnet18_cifar(
    input_shape=(32, 32, 3),
    input_tensor=None,
    pooling="avg",
    widths=(64, 128, 256, 512),
    blocks=(2, 2, 2, 2),
    name="resnet18_cifar",
):
    """Builds ResNet-18 in its CIFAR form, headless.

    Args:
        input_shape: `(height, width, channels)` of the images.
        input_tensor: optional Keras tensor to build the model on.
        pooling: `"avg"` (a `[batch, widths[-1]]` output) or `None` (the
            last feature map).
        widths: channels of the four stages (smaller for tests).
        blocks: basic blocks of each stage (`(2, 2, 2, 2)`: ResNet-18).
        name: the model's name.

    Returns:
        A functional `keras.Model`; the stage outputs are `layer1_out` ...
        `layer4_out` (`RESNET18_CIFAR_STAGES` are the last three).

    Example:

    >>> model = resnet18_cifar(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1))
    >>> model.output_shape
    (None, 16)
    """
    if len(widths) != 4 or len(blocks) != 4:
        raise ValueError(
            "Expected four stage widths and block counts. Received: "
            f"widths={widths!r}, blocks={blocks!r}"
        )
    images, inputs = _images(input_tensor, input_shape)
    x = _conv(widths[0], 3, 1, "stem_conv")(images)
    x = _batch_norm("stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, (filters, count) in enumerate(zip(widths, blocks)):
        for index in range(count):
            strides = 2 if stage > 0 and index == 0 else 1
            last = index == count - 1
            block = f"layer{stage + 1}" + ("" if last else f"_block{index}")
            x = _basic_block(x, filters, strides, block)
    return keras.Model(inputs, _pool(x, pooling), name=name)


def _divisible(value, divisor=8):
    """MobileNetV2's channel rounding (`_make_divisible`)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _inverted_residual(x, expansion, filters, strides, name):
    channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = _conv(channels * expansion, 1, 1, f"{name}_expand")(y)
        y = _batch_norm(f"{name}_expand_bn")(y)
        y = keras.layers.ReLU(6.0, name=f"{name}_expand_relu")(y)
    y = keras.layers.DepthwiseConv2D(
        3,
        strides=strides,
        padding="same",
        use_bias=False,
        depthwise_initializer=keras.initializers.HeNormal(),
        name=f"{name}_depthwise",
    )(y)
    y = _batch_norm(f"{name}_depthwise_bn")(y)
    y = keras.layers.ReLU(6.0, name=f"{name}_depthwise_relu")(y)
    y = _conv(filters, 1, 1, f"{name}_project")(y)
    y = _batch_norm(f"{name}_project_bn")(y)
    if strides == 1 and channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def mobilenet_v2_cifar(
    input_shape=(32, 32, 3),
    input_tensor=None,
    pooling="avg",
    alpha=1.0,
    last_channels=1280,
    stages=MOBILENET_V2_CIFAR_STAGES,
    name=None,
):
    """Builds MobileNetV2 in its CIFAR form (stride-1 stem), headless.

    Args:
        input_shape: `(height, width, channels)` of the images.
        input_tensor: optional Keras tensor to build the model on.
        pooling: `"avg"` (a `[batch, last_channels]` output) or `None`.
        alpha: width multiplier of the stem and the bottlenecks (0.5: the
            reference's MobileNetV2 x0.5 task networks); the last 1x1
            convolution keeps `last_channels` for `alpha <= 1`, as
            MobileNetV2 does.
        last_channels: channels of the last 1x1 convolution.
        stages: `(expansion, channels, blocks, stride)` a stage.
        name: the model's name (default `mobilenet_v2_cifar_<alpha>`).

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = mobilenet_v2_cifar(alpha=0.25, last_channels=32,
    ...                            stages=((1, 16, 1, 1), (6, 24, 1, 2)))
    >>> model.output_shape
    (None, 32)
    """
    if not alpha > 0:
        raise ValueError(f"Expected alpha > 0. Received: alpha={alpha!r}")
    images, inputs = _images(input_tensor, input_shape)
    x = _conv(_divisible(32 * alpha), 3, 1, "stem_conv")(images)
    x = _batch_norm("stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu")(x)
    block = 0
    for expansion, channels, count, stride in stages:
        for index in range(count):
            x = _inverted_residual(
                x,
                expansion,
                _divisible(channels * alpha),
                stride if index == 0 else 1,
                f"block{block}",
            )
            block += 1
    last = _divisible(last_channels * alpha) if alpha > 1 else last_channels
    x = _conv(last, 1, 1, "head_conv")(x)
    x = _batch_norm("head_bn")(x)
    x = keras.layers.ReLU(6.0, name="head_relu")(x)
    name = name or f"mobilenet_v2_cifar_{alpha:g}".replace(".", "_")
    return keras.Model(inputs, _pool(x, pooling), name=name)


__all__ = [
    "MOBILENET_V2_CIFAR_STAGES",
    "RESNET18_CIFAR_STAGES",
    "mobilenet_v2_cifar",
    "resnet18_cifar",
]
