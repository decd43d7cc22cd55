"""`FusedBatchNormalization`: Keras batch norm on TensorFlow's one kernel.

Keras 3 computes batch normalization from `moments` and element-wise ops:
several passes over the activations, forward and backward. In training, on
4-D channels-last float32 inputs, this layer calls `FusedBatchNormV3`
instead (one kernel each way), with the same weights, the same
moving-statistics update and the same results to float rounding. In
inference it is Keras's layer, bit for bit. Measured on the benchmark's
narrow factorization step (batch 128, interleaved A/B): 1.42x the Keras
layer; the step without batch norm is 1.73x (`benchmarks/fused_encoders.py
--what step`).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="kfactor")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` that trains on `FusedBatchNormV3`.

    Same arguments, weights and config as the Keras layer. Inputs it cannot
    fuse (not 4-D channels-last float32, a mask, renorm, synchronized) go
    to the Keras layer's own `call`.

    Example:

    >>> layer = FusedBatchNormalization()
    >>> layer(np.ones((2, 4, 4, 3), "float32"), training=True).shape
    TensorShape([2, 4, 4, 3])
    """

    def _fusable(self, inputs, mask):
        return (
            len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and mask is None
            and not self.renorm
            and not self.synchronized
            and self.center
            and self.scale
            and inputs.dtype == tf.float32
        )

    def call(self, inputs, training=None, mask=None):
        if training and self.trainable and self._fusable(inputs, mask):
            return self._train(inputs)
        # Inference is Keras's own code: a saved network then computes
        # exactly what Keras's layer does. (With FusedBatchNormV3 here, the
        # demo's saved factors differed from the in-memory networks by
        # 5.3e-5, above the assembly tolerance.)
        return super().call(inputs, training=training, mask=mask)

    def _train(self, inputs):
        """Batch statistics, and the moving averages updated as Keras does."""
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            self.gamma,
            self.beta,
            epsilon=self.epsilon,
            is_training=True,
        )
        # The op returns the Bessel-corrected variance; Keras averages the
        # biased one.
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], "float32")
        variance = variance * (count - 1.0) / count
        for moving, value in (
            (self.moving_mean, mean),
            (self.moving_variance, variance),
        ):
            moving.assign(
                moving * self.momentum + value * (1.0 - self.momentum)
            )
        return outputs


@keras.saving.register_keras_serializable(package="kfactor")
class FoldedBatchNormalization(keras.layers.Layer):
    """Where a batch normalization was before it was folded: the identity.

    `kfactor.factors.folding.fold_batch_norm` folds a batch normalization
    into the convolution or dense layer before it and puts this layer in
    its place, under its name, so that a summary of the folded model shows
    what was folded. It accepts the batch normalization's call arguments
    (`training`, `mask`) and ignores them.

    Example:

    >>> FoldedBatchNormalization()(np.ones((2, 3), "float32")).shape
    TensorShape([2, 3])
    """

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


__all__ = ["FoldedBatchNormalization", "FusedBatchNormalization"]
