"""Image folders as a one-task dataset (`class_a/*.png`, `class_b/*.png`).

For single-task factorization of a classifier on your own images: one
sub-folder per class, read with `keras.utils.image_dataset_from_directory`
and put in kfactor's format `(images, {task: labels})`.
"""

import os

from kfactor.data.prefetch import prefetched

import keras
import tensorflow as tf


def load_image_folder(
    directory,
    task="label",
    image_size=(32, 32),
    batch_size=128,
    color_mode="rgb",
    shuffle=True,
    seed=0,
    validation_split=None,
    subset=None,
    class_names=None,
):
    """Loads `directory/<class>/<image>` as batched `(images, {task: labels})`.

    Args:
        directory: folder with one sub-folder of images per class (sorted
            names give the class indices).
        task: the label key (the teacher's task name).
        image_size: `(height, width)` images are resized to.
        batch_size: images per batch.
        color_mode: `"rgb"` or `"grayscale"`.
        shuffle: whether to shuffle (seeded).
        seed: seed of the shuffle and of the validation split.
        validation_split: fraction held out, with `subset`.
        subset: `"training"` or `"validation"` with `validation_split`.
        class_names: explicit class order (sub-folder names).

    Returns:
        `(dataset, class_names)`: a `tf.data.Dataset` of float32 images in
        `[0, 1]` and `{task: int32 labels}`, and the list of class names.

    Raises:
        FileNotFoundError: if `directory` does not exist.

    Example:

    ```python
    ds, classes = load_image_folder("flowers/", image_size=(64, 64))
    images, labels = next(iter(ds))  # labels["label"]: int32, shape (128,)
    ```
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            "Expected a folder of images with one sub-folder per class. "
            f"Received: directory={directory!r}, which does not exist."
        )
    dataset = keras.utils.image_dataset_from_directory(
        directory,
        labels="inferred",
        label_mode="int",
        class_names=class_names,
        color_mode=color_mode,
        batch_size=batch_size,
        image_size=tuple(image_size),
        shuffle=shuffle,
        seed=seed,
        validation_split=validation_split,
        subset=subset,
        verbose=False,
    )
    names = list(dataset.class_names)
    dataset = dataset.map(
        lambda images, labels: (
            tf.cast(images, tf.float32) / 255.0,
            {task: tf.cast(labels, tf.int32)},
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return prefetched(dataset), names


__all__ = [
    "load_image_folder",
]
