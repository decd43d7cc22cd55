"""The benchmarked models: the demo's dSprites teacher and factorizer.

Built with the library's own builders (`kfactor.lab.demo`), at full or narrow
SimpleConv64 widths, latent 10, five dSprites tasks (shape 3, scale 6,
orientation 40, pos_x 32, pos_y 32 classes). Weights are random: they do not
change the speed. Batches are random binary 64x64x1 images with random
labels, made once and cycled, so that input data is not measured.
"""

import functools
import os
import tempfile

import kfactor
from kfactor.lab import demo
from kfactor.zoo.simple_conv import FULL_WIDTHS
from kfactor.zoo.simple_conv import NARROW_WIDTHS

import numpy as np
import tensorflow as tf

WIDTHS = {"full": FULL_WIDTHS, "narrow": NARROW_WIDTHS}
LATENT_DIM = 10
NUM_CACHED_BATCHES = 4


def demo_config(width):
    """The demo's config at `width` (`"full"` or `"narrow"`)."""
    return demo.DemoConfig(widths=WIDTHS[width], latent_dim=LATENT_DIM)


def build_teacher(width):
    """An untrained multi-task dSprites teacher (SimpleConv64 + 5 heads)."""
    return demo.build_teacher(demo_config(width))


def build_factorizer(width):
    """A `kfactor.Factorizer`: teacher, common and 5 variational tasks."""
    return demo.build_factorizer(build_teacher(width), demo_config(width))


def cached_batches(batch_size, count=NUM_CACHED_BATCHES, seed=0):
    """`count` batches `(images, {task: labels})` as tensors on the device."""
    rng = np.random.default_rng(seed)
    classes = kfactor.lab.datasets.DSPRITES_NUM_CLASSES
    batches = []
    for _ in range(count):
        images = rng.integers(0, 2, (batch_size, 64, 64, 1)).astype("float32")
        labels = {
            task: tf.constant(
                rng.integers(0, classes[task], batch_size), "int32"
            )
            for task in kfactor.lab.datasets.DSPRITES_TASKS
        }
        batches.append((tf.constant(images), labels))
    return batches


def random_images(batch_size, seed=0):
    """One batch of random binary images, a float32 tensor."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 2, (batch_size, 64, 64, 1)).astype("float32")
    return tf.constant(images)


@functools.cache
def factorizer_and_factors(width):
    """An untrained factorizer and its factors, saved and loaded back.

    Loading is the deployment path (`kfactor.load_factors`); the in-memory
    factorizer has the same architecture, for counting FLOPs.
    """
    factorizer = build_factorizer(width)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "factors")
        factorizer.save_factors(path)
        factors = kfactor.load_factors(path)
    return factorizer, factors


def parameter_bytes(model):
    """Bytes of all of `model`'s weights."""
    return int(
        sum(
            np.prod(w.shape) * np.dtype(w.dtype).itemsize for w in model.weights
        )
    )
