"""The tests' shared builders: tiny models and data, tiny saved factors.

Tiny models and data: 16x16 images with a 4x4 blob (`row`, `col` tasks),
small SimpleConv64 encoders. Saved factors: an untrained tiny factorization
saved once per session (exactness, format and plugin tests need fixed
weights, not good ones); tests that change files copy them first. Pytest's
hooks and fixtures are in `conftest.py`.
"""

import atexit
import functools
import json
import os
import shutil
import sys
import tempfile

import kfactor
from kfactor.factors import manifest as manifest_lib

import keras
import numpy as np
import tensorflow as tf

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_SHAPE = (16, 16, 1)
TINY_WIDTHS = (8, 16, 16)
TINY_TASKS = {"row": 4, "col": 4}


def tiny_encoder(latent_dim=6, name="encoder"):
    return kfactor.zoo.simple_conv64(
        latent_dim, widths=TINY_WIDTHS, input_shape=TINY_SHAPE, name=name
    )


def tiny_teacher(tasks=None):
    return kfactor.zoo.multitask_teacher(
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

    config = obj.get_config()
    clone = type(obj).from_config(config)
    dump = lambda c: json.dumps(  # noqa: E731
        keras.saving.serialize_keras_object(c), sort_keys=True, default=str
    )
    assert dump(clone.get_config()) == dump(config)
    return clone


@functools.lru_cache(maxsize=None)
def scratch_dir():
    path = tempfile.mkdtemp(prefix="kfactor-factors-")
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.lru_cache(maxsize=None)
def factorizer():
    """An untrained tiny factorizer (tasks `row`, `col`), fixed seed."""
    keras.utils.set_random_seed(7)
    return tiny_factorizer()


@functools.lru_cache(maxsize=None)
def saved_factors():
    """`factorizer()` saved once; returns the directory (do not modify)."""
    directory = os.path.join(scratch_dir(), "first", "factors")
    factorizer().save_factors(directory, test_accuracy={"row": 0.5})
    return directory


@functools.lru_cache(maxsize=None)
def other_saved_factors():
    """A second, differently initialised factorization of the same teacher."""
    keras.utils.set_random_seed(8)
    other = tiny_factorizer(factorizer().teacher)
    directory = os.path.join(scratch_dir(), "second", "other")
    other.save_factors(directory)
    return directory


def copy_factors(destination, source=None):
    """A writable copy of the saved factors in `destination`."""
    shutil.copytree(source or saved_factors(), destination)
    return str(destination)


def edit_manifest(directory, edit):
    """Applies `edit(manifest dict)` to a factor directory's manifest."""
    path = os.path.join(directory, manifest_lib.MANIFEST_FILE)
    with open(path) as f:
        manifest = json.load(f)
    edit(manifest)
    with open(path, "w") as f:
        json.dump(manifest, f)


def probe(num=8, seed=3):
    return blob_images(num, seed)[0]


def console_tool(name):
    """Path of a console script installed beside this Python."""
    return os.path.join(os.path.dirname(sys.executable), name)


def subprocess_env():
    """An environment for a fresh Python: quiet TF, no repo on the path."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    env.pop("PYTHONSTARTUP", None)
    return env


def make_dist_info(site, dist_name, entry_points):
    """Writes `<site>/<dist>-0.1.dist-info` declaring `kfactor.factors`.

    Args:
        site: a folder put on `sys.path` (importlib.metadata scans it).
        dist_name: the distribution's name.
        entry_points: list of `"name = module:attribute"` lines.
    """
    info = os.path.join(site, f"{dist_name}-0.1.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[kfactor.factors]\n" + "\n".join(entry_points) + "\n")
    return info
