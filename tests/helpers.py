"""Tiny models and data shared by the tests (16x16 images, small convs)."""

import kfactor

import keras
import numpy as np
import tensorflow as tf

TINY_SHAPE = (16, 16, 1)
TINY_WIDTHS = (8, 16, 16)
TINY_TASKS = {"row": 4, "col": 4}


def tiny_encoder(latent_dim=6, name="encoder"):
    return kfactor.simple_conv64(
        latent_dim, widths=TINY_WIDTHS, input_shape=TINY_SHAPE, name=name
    )


def tiny_teacher(tasks=None):
    return kfactor.multitask_teacher(
        tasks or TINY_TASKS, encoder=tiny_encoder(name="teacher_encoder")
    )


def tiny_factorizer(teacher=None, tasks=None, **kwargs):
    teacher = teacher or tiny_teacher()
    tasks = tasks or list(TINY_TASKS)
    return kfactor.Factorizer(
        teacher,
        common=tiny_encoder(name="common_encoder"),
        tasks={t: tiny_encoder(None, name=f"{t}_encoder") for t in tasks},
        **kwargs,
    )


def blob_images(num, seed=0):
    """A 4x4 blob on a 4x4 grid: labels `row` and `col` (4 classes each)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 4, num)
    cols = rng.integers(0, 4, num)
    images = np.zeros((num, *TINY_SHAPE), "float32")
    for i, (r, c) in enumerate(zip(rows, cols)):
        images[i, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4, 0] = 1.0
    images += rng.uniform(0, 0.2, images.shape).astype("float32")
    labels = {"row": rows.astype("int32"), "col": cols.astype("int32")}
    return images, labels


def blob_dataset(num, batch_size=32, seed=0):
    images, labels = blob_images(num, seed)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(
        batch_size
    )


def train_teacher(teacher, dataset, epochs=3):
    teacher.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss={
            t: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            for t in teacher.output
        },
    )
    teacher.fit(dataset, epochs=epochs, verbose=0)
    return teacher


def assert_config_roundtrip(obj):
    """get_config -> from_config -> get_config gives the same JSON."""
    import json

    config = obj.get_config()
    clone = type(obj).from_config(config)
    dump = lambda c: json.dumps(  # noqa: E731
        keras.saving.serialize_keras_object(c), sort_keys=True, default=str
    )
    assert dump(clone.get_config()) == dump(config)
    return clone
