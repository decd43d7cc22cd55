"""How kfactor's tf.data pipelines end: a fixed prefetch, autotuning off.

With tf.data's autotuning on (its default), destroying an iterator waits
for the autotuning thread's next wake-up, and that thread sleeps 10 ms,
20 ms, 40 ms, ... doubling: it wakes 2.55 s, 5.1 s, 10.2 s, 20.5 s, ...
after the iterator started. Keras's `fit`, `evaluate` and `predict` make an
iterator on every call and destroy it on return, so each call ended on the
next of those wake-ups. Measured (2-core AMD EPYC, AVX-512): a 20-step
`fit` of the demo's factorizer took 1.4-1.6 s or exactly 2.6 s, a 150-step
one 8.2 s or exactly 10.29 s, a 200-step one 12-14 s or exactly 20.5 s
(the return waited 0.7-1.2 s after `on_train_end` in the 20-step case);
with autotuning off, 1.38-1.52 s every time.

kfactor's pipelines cost under 1 ms of CPU a batch of 64 (vs ~60 ms for
the step), so autotuning has nothing to gain there: parallel `map`s keep
`tf.data.AUTOTUNE`, which then means one call per CPU core, and the
prefetch buffer is `PREFETCH_BATCHES`.
"""

import tensorflow as tf

#: Batches each of kfactor's pipelines prepares ahead of the model.
PREFETCH_BATCHES = 2


def prefetched(dataset):
    """`dataset.prefetch(PREFETCH_BATCHES)`, with tf.data autotuning off.

    Example:

    >>> ds = prefetched(tf.data.Dataset.range(4).batch(2))
    >>> ds.options().autotune.enabled
    False
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


__all__ = ["PREFETCH_BATCHES", "prefetched"]
