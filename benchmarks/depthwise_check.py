"""Depthwise 3x3 convolutions alone, forward + backward: TF vs PyTorch.

    python -m benchmarks.depthwise_check

At the realistic workload's MobileNetV2-CIFAR x0.5 shapes (batch 128), in
interleaved rounds: Keras `DepthwiseConv2D`, the same as a grouped
`Conv2D(groups=C)` (a candidate route-around), and PyTorch's
`Conv2d(groups=C)` in NCHW and channels_last. Prints the median ms of each
(gradients of the input and the kernel). Needs torch.
"""

import os
import time

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402


import keras
import tensorflow as tf
import torch

BATCH = 128
#: (height = width, channels) of the blocks' depthwise convolutions.
SHAPES = ((32, 48), (32, 72), (16, 96), (8, 192), (4, 480))


def tf_step(layer):
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, *layer.trainable_variables])

    return lambda x: [g.numpy() for g in step(x)]


def torch_step(conv, x):
    def run():
        y = conv(x)
        (y * y).sum().backward()

    return run


def items():
    found = []
    for side, channels in SHAPES:
        name = f"{side}x{side}x{channels}"
        x = tf.random.uniform((BATCH, side, side, channels))
        depthwise = keras.layers.DepthwiseConv2D(
            3, padding="same", use_bias=False
        )
        grouped = keras.layers.Conv2D(
            channels, 3, padding="same", use_bias=False, groups=channels
        )
        for layer in (depthwise, grouped):
            layer.build(x.shape)
        fmt = torch.channels_last
        xt = torch.rand(BATCH, channels, side, side, requires_grad=True)
        xl = xt.detach().contiguous(memory_format=fmt).requires_grad_(True)
        conv = torch.nn.Conv2d(channels, channels, 3, 1, 1, groups=channels)
        conv_l = torch.nn.Conv2d(channels, channels, 3, 1, 1, groups=channels)
        conv_l = conv_l.to(memory_format=fmt)
        step_dw, step_gc = tf_step(depthwise), tf_step(grouped)
        found += [
            (f"{name} tf_depthwise", lambda s=step_dw, x=x: s(x)),
            (f"{name} tf_grouped_conv", lambda s=step_gc, x=x: s(x)),
            (f"{name} torch", torch_step(conv, xt)),
            (f"{name} torch_channels_last", torch_step(conv_l, xl)),
        ]
    return found


def main(rounds=3, window_s=0.5):
    torch.set_num_threads(os.cpu_count())
    found = items()
    for _, fn in found:
        fn()
    times = {name: [] for name, _ in found}
    for r in range(rounds):
        for name, fn in found if r % 2 == 0 else found[::-1]:
            start, calls = time.perf_counter(), 0
            while time.perf_counter() - start < window_s:
                fn()
                calls += 1
            times[name].append((time.perf_counter() - start) / calls * 1e3)
    print(f"load average {os.getloadavg()}")
    for name, values in times.items():
        print(f"{name:36s} {sorted(values)[len(values) // 2]:9.2f} ms")


if __name__ == "__main__":
    main()
