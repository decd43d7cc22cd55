"""The divergences the loss terms are made of, over the global batch.

`vib_kl` and `batch_moment_kl` are the two bottlenecks of `InfoMinLoss`
(and `kfactor.objective.health.task_code_kl`), `smoothed_cross_entropy` the
CE of `TaskLoss`, and `gather_replicas` makes a batch-level term see the
global batch under `tf.distribute`.

What stays TensorFlow and why: the KLs are TFP's `tfd.kl_divergence`
(Keras has no KL of distributions) and `gather_replicas` is a
`tf.distribute` all-gather (no `keras.ops` op); the rest is `keras.ops`.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

tfd = tfp.distributions


def gather_replicas(x):
    """Concatenates `x` over the batch axis of every replica (global batch).

    Batch-level terms (contrastive InfoMax, batch moments) must see the
    global batch to equal their single-device value. Outside a replica
    context, or with one replica, `x` comes back unchanged. The gather is
    differentiable: each replica's gradient reaches its own slice.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    return context.all_gather(x, axis=0)


def vib_kl(mean, log_var):
    """Per-sample KL(N(mean, exp(log_var)) || N(0, I)), averaged over batch."""
    posterior = tfd.Independent(
        tfd.Normal(mean, ops.exp(0.5 * log_var)), reinterpreted_batch_ndims=1
    )
    prior = tfd.Independent(
        tfd.Normal(ops.zeros_like(mean), ops.ones_like(mean)),
        reinterpreted_batch_ndims=1,
    )
    return ops.mean(tfd.kl_divergence(posterior, prior))


def batch_moment_kl(codes):
    """KL(N(batch mean, batch variance) || N(0, 1)), averaged over dims.

    The bottleneck the reference code runs for CIFAR/ImageNet: moments over
    the (global) batch, unbiased variance (as `torch.var`).
    """
    codes = gather_replicas(codes)
    batch = ops.cast(ops.shape(codes)[0], codes.dtype)
    mean = ops.mean(codes, axis=0)
    variance = ops.var(codes, axis=0) * batch / (batch - 1.0)
    moments = tfd.Normal(mean, ops.sqrt(variance))
    prior = tfd.Normal(ops.zeros_like(mean), ops.ones_like(mean))
    return ops.mean(tfd.kl_divergence(moments, prior))


def smoothed_cross_entropy(labels, logits, label_smoothing):
    """Mean CE against `onehot * (1 - eps) + eps / K` targets."""
    logits = ops.cast(logits, "float32")
    targets = ops.one_hot(ops.cast(labels, "int32"), ops.shape(logits)[-1])
    return ops.mean(
        keras.losses.categorical_crossentropy(
            targets, logits, from_logits=True, label_smoothing=label_smoothing
        )
    )


__all__ = [
    "batch_moment_kl",
    "gather_replicas",
    "smoothed_cross_entropy",
    "vib_kl",
]
