"""TFDS loaders (offline): dsprites, shapes3d and cifar10 as task dicts.

The data must already be prepared in a local `data_dir`: kfactor never
downloads (`as_dataset` only, no `download_and_prepare`). TFDS's dsprites
and shapes3d have a single `"train"` split; use TFDS slicing such as
`"train[:70%]"` and `"train[70%:]"` for a train/test split.
"""

import os

from kfactor.data.prefetch import prefetched
from kfactor.lab.datasets.files import SHAPES3D_NUM_CLASSES
from kfactor.lab.datasets.files import SHAPES3D_TASKS
from kfactor.lab.datasets.grid import DSPRITES_NUM_CLASSES
from kfactor.lab.datasets.grid import DSPRITES_TASKS

import tensorflow as tf

# TFDS feature holding the label of each kfactor task, per dataset.
TFDS_LABEL_FEATURES = {
    "dsprites": dict(
        zip(
            DSPRITES_TASKS,
            (
                "label_shape",
                "label_scale",
                "label_orientation",
                "label_x_position",
                "label_y_position",
            ),
        )
    ),
    "shapes3d": {task: f"label_{task}" for task in SHAPES3D_TASKS},
    "cifar10": {"label": "label"},
}
CIFAR10_NUM_CLASSES = {"label": 10}
TFDS_NUM_CLASSES = {
    "dsprites": dict(DSPRITES_NUM_CLASSES),
    "shapes3d": dict(SHAPES3D_NUM_CLASSES),
    "cifar10": dict(CIFAR10_NUM_CLASSES),
}
# Source file TFDS expects in `manual_dir` to prepare each dataset offline.
TFDS_SOURCE_FILES = {
    "dsprites": "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5",
    "shapes3d": "3dshapes.h5",
    "cifar10": "cifar-10-binary.tar.gz",
}


def _missing_data_error(name, data_dir, cause):
    return FileNotFoundError(
        f"Expected the prepared TFDS dataset {name!r} in data_dir. "
        f"Received: data_dir={data_dir!r}, where it is not prepared "
        f"({cause}). kfactor never downloads. Fix: on a machine with "
        f"internet run `tfds.builder({name!r}, data_dir=DIR)"
        ".download_and_prepare()` and copy DIR here; or put "
        f"{TFDS_SOURCE_FILES[name]!r} in a folder MANUAL and run "
        f"`tfds.builder({name!r}, data_dir={data_dir!r})"
        ".download_and_prepare(download_config="
        "tfds.download.DownloadConfig(manual_dir=MANUAL))`."
    )


def _to_example(name, features):
    image = features["image"]
    if name == "dsprites":
        # TFDS dsprites stores 0/1 pixels: any non-zero pixel is "on".
        image = tf.cast(image > 0, tf.float32)
    else:
        image = tf.cast(image, tf.float32) / 255.0
    labels = {
        task: tf.cast(features[feature], tf.int32)
        for task, feature in TFDS_LABEL_FEATURES[name].items()
    }
    return image, labels


def load_tfds(
    name,
    data_dir,
    split="train",
    batch_size=128,
    shuffle=True,
    seed=0,
    repeat=False,
    shuffle_buffer=10_000,
    drop_remainder=False,
):
    """Loads a locally prepared TFDS dataset as `(image, {task: label})`.

    Args:
        name: `"dsprites"`, `"shapes3d"` or `"cifar10"`.
        data_dir: TFDS data directory holding the prepared dataset (None:
            TFDS's default, `~/tensorflow_datasets`).
        split: TFDS split, e.g. `"train"`, `"train[:70%]"`, `"test"`.
        batch_size: examples per batch.
        shuffle: whether to shuffle files (seeded) and examples (a buffer of
            `shuffle_buffer`, op seed `seed`; TensorFlow's global seed, if
            set, also enters the order).
        seed: seed of both shuffles.
        repeat: whether to loop forever.
        shuffle_buffer: size of the example shuffle buffer.
        drop_remainder: whether to drop the last, smaller batch.

    Returns:
        A `tf.data.Dataset` of float32 images in `[0, 1]` (`(B, 64, 64, 1)`
        dsprites, `(B, 64, 64, 3)` shapes3d, `(B, 32, 32, 3)` cifar10) and a
        dict of int32 labels keyed by `TFDS_LABEL_FEATURES[name]`'s tasks.

    Raises:
        FileNotFoundError: if the data are not prepared in `data_dir`, with
            the steps to prepare them offline.

    Example:

    ```python
    ds = load_tfds("dsprites", "/data/tfds", split="train[:70%]")
    images, labels = next(iter(ds))  # labels["shape"]: int32, shape (128,)
    ```
    """
    if name not in TFDS_LABEL_FEATURES:
        raise ValueError(
            f"Expected name in {sorted(TFDS_LABEL_FEATURES)}. Received: "
            f"name={name!r}."
        )
    import tensorflow_datasets as tfds

    if data_dir is not None:
        data_dir = os.fspath(data_dir)
        if not os.path.isdir(data_dir):
            raise _missing_data_error(name, data_dir, "no such directory")
    builder = tfds.builder(name, data_dir=data_dir)
    read_config = tfds.ReadConfig(shuffle_seed=seed)
    try:
        ds = builder.as_dataset(
            split=split, shuffle_files=shuffle, read_config=read_config
        )
    except AssertionError as error:
        # TFDS signals "not prepared" with an AssertionError.
        raise _missing_data_error(name, data_dir, "no prepared files") from (
            error
        )
    ds = ds.map(
        lambda features: _to_example(name, features),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return prefetched(ds)


__all__ = [
    "CIFAR10_NUM_CLASSES",
    "TFDS_LABEL_FEATURES",
    "TFDS_NUM_CLASSES",
    "TFDS_SOURCE_FILES",
    "load_tfds",
]
