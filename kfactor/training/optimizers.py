"""`FusedAdam`: Keras's Adam, each variable updated by one TensorFlow kernel.

Keras 3's `Adam.update_step` is written in `keras.ops`: on TensorFlow that
is about ten element-wise ops and three assignments for every trained
variable. A factorizer trains six encoders (about 130 variables): at the
demo's narrow width the step spends more time launching those small ops
than computing them. `FusedAdam` updates each variable with TensorFlow's
`ResourceApplyAdam` kernel instead: the same update (Kingma & Ba's
algorithm with Keras's "epsilon hat" placement), in one pass over the
variable and its two slots. Everything else is Keras's: the slots, the
learning-rate schedules, clipping, weight decay, EMA, loss scaling,
serialization.
"""

from kfactor import keras_internals

import keras
import tensorflow as tf

#: Variable dtypes the kernel updates; others take Keras's own update.
FUSED_DTYPES = (tf.float32, tf.float64)


@keras.saving.register_keras_serializable(package="kfactor")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` on TensorFlow's fused Adam kernel.

    Same arguments, slots and config as `keras.optimizers.Adam`. Falls back
    to Keras's update for `amsgrad`, sparse gradients, dtypes outside
    `FUSED_DTYPES`, other backends, and inside a `tf.distribute` strategy
    (whose variables are updated per replica by Keras).

    Example:

    >>> variable = keras.Variable([1.0, 2.0])
    >>> optimizer = FusedAdam(learning_rate=0.1)
    >>> optimizer.apply([keras.ops.convert_to_tensor([1.0, -1.0])],
    ...                 [variable])
    >>> np.round(variable.numpy(), 4)
    array([0.9, 2.1], dtype=float32)
    """

    def _fusable(self, gradient, variable):
        return (
            keras.backend.backend() == "tensorflow"
            and not self.amsgrad
            and not isinstance(gradient, tf.IndexedSlices)
            and variable.dtype in FUSED_DTYPES
            and not tf.distribute.has_strategy()
        )

    def update_step(self, gradient, variable, learning_rate):
        if not self._fusable(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        momentum, velocity = keras_internals.adam_slots(self, variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=momentum.handle,
            v=velocity.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


__all__ = ["FUSED_DTYPES", "FusedAdam"]
