"""tf.data pipelines over in-memory arrays, and their shuffled positions.

`position_batches` shuffles *positions* (cheap int64s) with a stateless,
per-epoch permutation (`seed`, epoch number) and batches them; a pipeline
then builds each batch in one vectorized op (`map` after `batch`,
parallel, prefetched): `tf.gather` for `array_dataset`, the renderer for
the lab's procedural dSprites (`kfactor.lab.datasets.pipeline`). The order
depends only on `seed`, not on TensorFlow's global seed.

Throughput, batch 128, on the development machine's 2 CPU cores while
other jobs kept its load average at 3-4.5 (so a lower bound): a cached
subset is served at 74,000-208,000 images/s. A training step consumes
100-400 images/s, so the input pipeline is never the bottleneck.
"""

import itertools

from kfactor.data.prefetch import prefetched
from kfactor.validation import check_image_values
from kfactor.validation import check_label_values

import numpy as np
import tensorflow as tf


def check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(
        batch_size, (int, np.integer)
    ):
        raise TypeError(
            "Expected an int `batch_size`. Received: "
            f"batch_size={batch_size!r}."
        )
    if batch_size < 1:
        raise ValueError(
            f"Expected `batch_size` >= 1. Received: batch_size={batch_size}."
        )


def _next_epoch_dataset():
    """One element: 0 on the first iteration, 1 on the next, and so on.

    Keras's `fit` iterates a finite dataset once per epoch; counting the
    iterations gives every epoch its own permutation.
    """
    counter = itertools.count()

    def next_epoch():
        yield next(counter)

    return tf.data.Dataset.from_generator(
        next_epoch, output_signature=tf.TensorSpec((), tf.int64)
    )


def position_batches(
    num, batch_size, shuffle=True, seed=0, repeat=False, drop_remainder=False
):
    """Batches of positions `0..num-1`, reshuffled every epoch.

    Args:
        num: number of elements per epoch.
        batch_size: positions per batch.
        shuffle: whether to permute the positions every epoch.
        seed: int seed; epoch `e` uses the stateless seed `(seed, e)`.
        repeat: whether to loop over epochs forever.
        drop_remainder: whether to drop the last, smaller batch.

    Returns:
        A `tf.data.Dataset` of int64 vectors, with a known cardinality.

    Example:

    >>> ds = position_batches(5, 2, shuffle=False)
    >>> [b.tolist() for b in ds.as_numpy_iterator()]
    [[0, 1], [2, 3], [4]]
    """
    check_batch_size(batch_size)
    if num < 1:
        raise ValueError(f"Expected at least one element. Received: num={num}.")
    num = int(num)
    if shuffle:
        seed = int(seed)

        def epoch_positions(epoch):
            # Full-range int64 keys: no ties, unlike float32 keys (which
            # collide thousands of times over the 737,280-image grid).
            keys = tf.random.stateless_uniform(
                [num],
                seed=tf.stack([tf.constant(seed, tf.int64), epoch]),
                minval=None,
                maxval=None,
                dtype=tf.int64,
            )
            order = tf.argsort(keys, stable=True)
            return tf.data.Dataset.from_tensor_slices(tf.cast(order, tf.int64))

        epochs = tf.data.Dataset.counter() if repeat else _next_epoch_dataset()
        ds = epochs.flat_map(epoch_positions)
        cardinality = tf.data.INFINITE_CARDINALITY if repeat else num
        ds = ds.apply(tf.data.experimental.assert_cardinality(cardinality))
    else:
        ds = tf.data.Dataset.range(num)
        if repeat:
            ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder)


def array_dataset(
    images,
    labels,
    batch_size=128,
    shuffle=True,
    seed=0,
    repeat=False,
    pixel_scale=1.0,
    drop_remainder=False,
    num_classes=None,
    value_range=(0.0, 1.0),
):
    """Batched `(images, {task: labels})` from in-memory arrays.

    The arrays are copied once into TensorFlow tensors that the pipeline
    gathers batches from, so they briefly need twice their memory.

    The arrays are checked first (`kfactor.validation`): labels must be
    whole numbers >= 0 (below `num_classes` when given; float labels such
    as 1.0 are accepted, 0.5 is an error, never truncated), and images
    finite and, once multiplied by `pixel_scale`, within `value_range`
    (8-bit pixels 0-255 need `pixel_scale=1/255`: the opt-in rescale).

    Args:
        images: array `(N, H, W, C)`, usually uint8 to save memory.
        labels: dict mapping task names to int arrays of shape `(N,)`.
        batch_size: images per batch.
        shuffle: whether to reshuffle every epoch.
        seed: seed of the shuffle.
        repeat: whether to loop forever.
        pixel_scale: factor applied after casting images to float32 (1 for
            binary images, 1/255 for 8-bit images).
        drop_remainder: whether to drop the last, smaller batch.
        num_classes: optional dict task -> number of classes, to check
            the labels against.
        value_range: `(low, high)` the scaled images must lie in (with
            the margin of `kfactor.validation`); None: no range check.

    Returns:
        A `tf.data.Dataset` of float32 images and a dict of int32 labels.

    Example:

    >>> ds = array_dataset(np.zeros((4, 2, 2, 1), np.uint8),
    ...                    {"t": np.arange(4)}, batch_size=2)
    >>> [int(y["t"].shape[0]) for _, y in ds]
    [2, 2]
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            "Expected images of shape (N, H, W, C). Received: "
            f"shape={images.shape}."
        )
    if not isinstance(labels, dict) or not labels:
        raise TypeError(
            "Expected `labels` as a non-empty dict {task: int array}. "
            f"Received: {type(labels).__name__}."
        )
    check_image_values(images, value_range, "images", scale=pixel_scale)
    label_tensors = {}
    for name, values in labels.items():
        values = np.asarray(values)
        if values.shape != (len(images),):
            raise ValueError(
                f"Expected labels[{name!r}] of shape ({len(images)},). "
                f"Received: shape={values.shape}."
            )
        classes = (num_classes or {}).get(name)
        values = check_label_values(values, classes, f"labels[{name!r}]")
        label_tensors[name] = tf.constant(values)
    image_table = tf.convert_to_tensor(images)
    scale = tf.constant(pixel_scale, tf.float32)

    def gather_batch(positions):
        batch = tf.cast(tf.gather(image_table, positions), tf.float32) * scale
        return batch, {
            name: tf.gather(values, positions)
            for name, values in label_tensors.items()
        }

    ds = position_batches(
        len(images), batch_size, shuffle, seed, repeat, drop_remainder
    )
    ds = ds.map(gather_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return prefetched(ds)


__all__ = [
    "array_dataset",
    "check_batch_size",
    "position_batches",
]
