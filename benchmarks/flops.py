"""Multiply-accumulates (MACs) of Keras models, counted on their TF graph.

`forward_macs(fn, shape)` traces `fn` on one example and adds up the MACs of
its `Conv2D` (`H_out * W_out * C_out * k_h * k_w * C_in`), depthwise
(`H_out * W_out * C_out * k_h * k_w`) and `MatMul`
(`m * k * n`) ops: the convolutions and dense layers. Element-wise ops
(bias, ReLU, losses) are left out; they are < 1 % here.

A training step's FLOPs per image are counted by formula: a trained network
costs its forward MACs x 3 (forward, gradient of the input, gradient of the
weights), a frozen one x 1 (forward only), and 1 MAC = 2 FLOPs:

    factorization step: 2 * (3 * M_trained + M_teacher)
    teacher step:       2 * 3 * M_teacher

with `M_trained` the forward MACs of the common factor, the 5 task factors
(encoder, code layer, head, auxiliary head) and the InfoMax projection. The
x 3 slightly overcounts the first convolution (its input needs no gradient).
"""

import numpy as np
import tensorflow as tf

#: Ops that call other functions: their MACs would be hidden.
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")


def _shape(tensor):
    return [int(d) for d in tensor.shape]


def _conv2d_macs(op):
    if op.get_attr("data_format") != b"NHWC":
        raise ValueError(f"Expected NHWC convolutions. Received: {op.name}")
    n, h, w, c_out = _shape(op.outputs[0])
    k_h, k_w, c_in, _ = _shape(op.inputs[1])
    return n * h * w * c_out * k_h * k_w * c_in


def _matmul_macs(op):
    a, b = _shape(op.inputs[0]), _shape(op.inputs[1])
    m, k = a[::-1] if op.get_attr("transpose_a") else a
    n = b[0] if op.get_attr("transpose_b") else b[1]
    return m * k * n


def _depthwise_macs(op):
    if op.get_attr("data_format") != b"NHWC":
        raise ValueError(f"Expected NHWC convolutions. Received: {op.name}")
    n, h, w, c_out = _shape(op.outputs[0])
    k_h, k_w, _, _ = _shape(op.inputs[1])
    return n * h * w * c_out * k_h * k_w


_COUNTERS = {
    "Conv2D": _conv2d_macs,
    "DepthwiseConv2dNative": _depthwise_macs,
    "MatMul": _matmul_macs,
}


def graph_macs(graph):
    """MACs of the Conv2D and MatMul ops of a (function) graph."""
    total = 0
    for op in graph.get_operations():
        if op.type in _CALL_OPS:
            raise ValueError(
                f"Cannot count MACs inside the nested function op {op.name}: "
                "count an in-memory Keras model, not a loaded SavedModel."
            )
        if op.type in _COUNTERS:
            total += _COUNTERS[op.type](op)
    return total


def forward_macs(fn, example_shape):
    """MACs of `fn(images)` for one image shaped `example_shape`."""
    spec = tf.TensorSpec((1, *example_shape), "float32")
    return graph_macs(tf.function(fn).get_concrete_function(spec).graph)


def factorization_macs(factorizer):
    """Forward MACs per image: `{"teacher", "trained", "total"}`.

    `total` is the factorizer's whole training forward pass (teacher,
    common, task factors with both heads, InfoMax projection); `trained` is
    what the optimizer updates (total minus the frozen teacher).
    """
    shape = factorizer.image_shape
    teacher = forward_macs(lambda x: factorizer.teacher(x), shape)
    # `_forward` is the training step's forward pass, without the losses.
    total = forward_macs(lambda x: factorizer._forward(x, False), shape)
    return {"teacher": teacher, "trained": total - teacher, "total": total}


def factorization_step_flops(macs):
    """FLOPs per image of a factorization step: 2 (3 M_trained + M_teacher)."""
    return 2 * (3 * macs["trained"] + macs["teacher"])


def teacher_step_flops(teacher_macs):
    """FLOPs per image of a teacher training step: 2 * 3 * M_teacher."""
    return 2 * 3 * teacher_macs


def matmul_flops(size):
    """FLOPs of one `size x size` by `size x size` matmul."""
    return 2 * int(np.int64(size) ** 3)
