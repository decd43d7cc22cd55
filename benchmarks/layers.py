"""Convolution-layer items: what the factorization step's layers reach alone.

The full-width factorization step is almost all convolution (99 % of its
MACs). `layer/{width}/conv{k}` times the step's share of convolution `k`
with nothing else around it: the six trained networks' layer `k` forward
with the gradients of its input (but layer 1's: an image needs none) and of
its weights, plus the frozen teacher's layer `k` forward, each network on
its own random input of the layer's shape. The layers are the library's own
(`MatmulConv2D`, oneDNN on CPU). FLOPs are counted as the step
counts
them: 2 (3 * 6 + 1) * forward MACs of the graph.

Summed over the six layers, these windows are the step's time without its
losses, optimizer, heads or glue: their FLOPs over their time is a ceiling
of the step's GFLOP/s that a faster loss or optimizer cannot lift.
"""

from kfactor.layers.conv import MatmulConv2D
from kfactor.zoo.simple_conv import simple_conv64

import keras
import tensorflow as tf

from benchmarks import flops
from benchmarks import models
from benchmarks.protocol import Item

TRAINED_NETWORKS = 6  # the common factor and 5 task factors


def step_layer_flops(forward_macs):
    """FLOPs of a layer in the step: 2 (3 * trained + 1 teacher) * MACs."""
    return 2 * (3 * TRAINED_NETWORKS + 1) * forward_macs


def encoder_convolutions(width):
    """The Conv2D layers of the step's SimpleConv64 encoder at `width`."""
    encoder = simple_conv64(None, widths=models.WIDTHS[width])
    layers = encoder.layers
    return [x for x in layers if isinstance(x, keras.layers.Conv2D)]


def _copies(conv, shape, count):
    copies = []
    for _ in range(count):
        layer = MatmulConv2D.from_config(conv.get_config())
        layer.build(shape)
        copies.append(layer)
    return copies


def layer_step(conv, shape, first):
    """A `tf.function`: the step's work on one convolution layer."""
    trained = _copies(conv, shape, TRAINED_NETWORKS)
    teacher = _copies(conv, shape, 1)[0]
    # Layer 1: every network reads the same images; later, its own map.
    count = 1 if first else TRAINED_NETWORKS + 1
    inputs = [tf.random.uniform(shape, seed=i) for i in range(count)]
    inputs *= TRAINED_NETWORKS + 1 if first else 1

    @tf.function
    def step():
        total = tf.reduce_sum(teacher(inputs[-1]))
        for layer, x in zip(trained, inputs):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x))
            sources = [layer.kernel, layer.bias] + ([] if first else [x])
            grads = tape.gradient(loss, sources)
            total += tf.add_n([tf.reduce_sum(g) for g in grads])
        return total

    return step


def layer_items(width, batch_size):
    """One item a convolution of the step's encoder; units FLOPs."""
    items = []
    for index, conv in enumerate(encoder_convolutions(width), 1):
        shape = (batch_size, *conv.input.shape[1:])
        step = layer_step(conv, shape, first=index == 1)
        macs = batch_size * flops.forward_macs(conv, shape[1:])

        def run(calls, step=step):
            for _ in range(calls):
                total = step()
            float(total)

        meta = {
            "input_shape": list(shape),
            "filters": conv.filters,
            "forward_macs_per_network": macs,
            "batch_size": batch_size,
        }
        items.append(
            Item(
                f"layer/{width}/conv{index}",
                run,
                step_layer_flops(macs),
                unit="flop",
                meta=meta,
            )
        )
    return items
