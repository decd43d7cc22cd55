"""`MatmulConv2D`: Keras's convolution, run as one matmul when the output
is 1x1.

The last layer of SimpleConv64 maps a 2x2 map to 1x1 with a 4x4 kernel and
one pixel of padding on each side: 12 of its 16 taps only ever meet the
padding. oneDNN runs that convolution (and its two gradients) as a general
strided convolution; measured on 2 CPU cores, the six trained networks of a
full-width factorization step spent 187 ms a batch of 128 in it, against
20 ms for the same layer as a matmul on the taps that meet the input.

`MatmulConv2D` is `keras.layers.Conv2D` with that shortcut: whenever the
output is 1x1 (the kernel's window covers the whole padded input), `call`
multiplies the flattened input by the covering slice of the kernel. The
weights, their shapes, the config and the results (up to float summation
order) are those of the stock layer; the taps that only see padding get a
zero gradient, as they do in a convolution. Any other shape runs the stock
convolution.
"""

import keras
from keras import ops


def _covering_window(size, kernel_size, strides, padding):
    """Along one axis: `(first tap, taps)`, the kernel taps that meet an input
    of `size` pixels (they meet its first `taps` pixels), or `None` unless
    the output along that axis is one pixel."""
    if padding == "valid":
        if size < kernel_size or size >= kernel_size + strides:
            return None
        return 0, kernel_size
    if size > strides:  # "same": ceil(size / strides) outputs
        return None
    pad_before = max(kernel_size - size, 0) // 2
    return pad_before, min(kernel_size - pad_before, size)


@keras.saving.register_keras_serializable(package="kfactor")
class MatmulConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D`, computed as a matmul when its output is 1x1.

    Same arguments, weights and config as the stock layer: `set_weights`
    moves weights either way (a whole-model weights file does not, since
    Keras files a layer's weights under its class name). The shortcut applies to
    `channels_last` inputs with a static spatial shape, no dilation and one
    group; everything else is the stock convolution.

    Example:

    >>> conv = MatmulConv2D(8, kernel_size=4, strides=2, padding="same")
    >>> tuple(conv(np.ones((3, 2, 2, 5), "float32")).shape)
    (3, 1, 1, 8)
    """

    def _matmul_windows(self, input_shape):
        if (
            self.data_format != "channels_last"
            or self.groups != 1
            or tuple(self.dilation_rate) != (1, 1)
            or len(input_shape) != 4
            or None in tuple(input_shape[1:3])
        ):
            return None
        windows = [
            _covering_window(int(size), kernel, stride, self.padding)
            for size, kernel, stride in zip(
                input_shape[1:3], self.kernel_size, self.strides
            )
        ]
        return None if None in windows else windows

    def call(self, inputs):
        windows = self._matmul_windows(inputs.shape)
        if windows is None:
            return super().call(inputs)
        (row, rows), (col, cols) = windows
        size = rows * cols * int(inputs.shape[-1])
        kernel = self.kernel[row : row + rows, col : col + cols]
        kernel = ops.reshape(kernel, (size, self.filters))
        # The pixels the taps meet (stride leftovers fall outside).
        patch = inputs[:, :rows, :cols, :]
        outputs = ops.matmul(ops.reshape(patch, (-1, size)), kernel)
        if self.use_bias:
            outputs = outputs + self.bias
        outputs = ops.reshape(outputs, (-1, 1, 1, self.filters))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


__all__ = [
    "MatmulConv2D",
]
