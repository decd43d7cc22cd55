"""The demo's teacher: the pretrained one shipped with kfactor, or trained.

The pretrained teacher (`kfactor/lab/pretrained/`, package data) is checked to
fit a `DemoConfig` before it is loaded: the same architecture, and no
training image in the run's test split.
"""

import json
import logging
import os
import time

from kfactor.lab import datasets as data_lib
from kfactor.lab.demo.config import DemoConfig
from kfactor.lab.demo.config import dsprites_splits
from kfactor.lab.demo.config import split_indices
from kfactor.lab.demo.config import teacher_config
from kfactor.lab.demo.config import teacher_indices
from kfactor.lab.demo.networks import build_teacher
from kfactor.lab.teacher import compile_teacher
from kfactor.lab.teacher import warmup_cosine_adam

import keras
import numpy as np

logger = logging.getLogger(__name__)

#: The pretrained dSprites teacher shipped with kfactor, and the
#: `DemoConfig` it was trained with (its `teacher_*` fields and the split).
PRETRAINED_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrained"
)
PRETRAINED_TEACHER = os.path.join(PRETRAINED_DIR, "dsprites_teacher.keras")
PRETRAINED_TEACHER_INFO = os.path.join(PRETRAINED_DIR, "dsprites_teacher.json")


def train_teacher(config):
    """Trains the demo's teacher; returns `(teacher, seconds, images/s)`."""
    indices = teacher_indices(config)
    train_ds = data_lib.dsprites_dataset(
        indices,
        batch_size=config.teacher_batch_size,
        shuffle=True,
        seed=config.seed,
        repeat=True,
    )
    test_ds = dsprites_splits(config)[1]
    steps = -(-config.teacher_num_train // config.teacher_batch_size)
    optimizer = warmup_cosine_adam(
        config.teacher_learning_rate,
        max(1, steps * config.teacher_epochs),
    )
    teacher = compile_teacher(build_teacher(config), optimizer)
    start = time.perf_counter()
    teacher.fit(
        train_ds,
        epochs=config.teacher_epochs,
        steps_per_epoch=steps,
        validation_data=test_ds,
        verbose=config.verbose,
        shuffle=False,
    )
    seconds = time.perf_counter() - start
    images = config.teacher_epochs * steps * config.teacher_batch_size
    return teacher, seconds, images / seconds if seconds > 0 else 0.0


def check_pretrained_teacher(config, path=None, info_path=None):
    """Checks that the shipped teacher fits `config`; returns its info.

    Raises `ValueError` (saying to pass `--train_teacher`) when a file is
    missing, when the teacher's architecture differs from `config`'s, or
    when its training images meet `config`'s test split. Cheap: it reads
    only the JSON and compares index sets.
    """
    path = path or PRETRAINED_TEACHER
    info_path = info_path or PRETRAINED_TEACHER_INFO
    for file in (path, info_path):
        if not os.path.isfile(file):
            raise ValueError(
                f"The pretrained teacher file {file} is missing. Fix: "
                "reinstall kfactor, or pass --train_teacher to train one."
            )
    with open(info_path) as f:
        info = json.load(f)
    trained_with = DemoConfig(
        **{**info["config"], "widths": tuple(info["config"]["widths"])}
    )
    for name in ("widths", "latent_dim", "normalization"):
        if getattr(trained_with, name) != getattr(config, name):
            raise ValueError(
                f"The pretrained teacher has {name}="
                f"{getattr(trained_with, name)!r}, this run asks for "
                f"{getattr(config, name)!r}. Fix: pass --train_teacher to "
                "train a teacher of this architecture."
            )
    seen = np.intersect1d(
        teacher_indices(trained_with), split_indices(config)[1]
    )
    if seen.size:
        raise ValueError(
            f"The pretrained teacher was trained on {seen.size} of this "
            f"run's {config.num_test} test images (seed {config.seed}, "
            f"num_train {config.num_train}; it was trained for seed "
            f"{trained_with.seed}, num_train {trained_with.num_train}, "
            f"num_test {trained_with.num_test}). Fix: pass --train_teacher."
        )
    return info


def load_pretrained_teacher(config, path=None, info_path=None):
    """Loads the shipped teacher, checked to fit `config` (see
    `check_pretrained_teacher`); returns `(teacher, info)`."""
    info = check_pretrained_teacher(config, path, info_path)
    return keras.saving.load_model(path or PRETRAINED_TEACHER), info


def check_teacher_config(config):
    """Raises `ValueError` if `config`'s split is larger than the grid or
    the pretrained teacher does not fit it (the whole run:
    `kfactor.lab.demo.baselines.check_config`)."""
    split_indices(config)
    if not config.train_teacher:
        check_pretrained_teacher(config)


def get_teacher(config):
    """The run's teacher: `(teacher, info)`, pretrained or trained now."""
    if not config.train_teacher:
        logger.info("Loading the pretrained teacher (%s).", PRETRAINED_TEACHER)
        teacher, info = load_pretrained_teacher(config)
        return teacher, {
            "source": "pretrained",
            "file": os.path.relpath(PRETRAINED_TEACHER, PRETRAINED_DIR),
            "train_seconds": 0.0,
            "trained_with": info["config"],
        }
    logger.info("Training the teacher (%d epochs).", config.teacher_epochs)
    teacher, seconds, rate = train_teacher(config)
    return teacher, {
        "source": "trained",
        "train_seconds": seconds,
        "train_images_per_second": rate,
        "trained_with": teacher_config(config),
    }


__all__ = [
    "PRETRAINED_DIR",
    "PRETRAINED_TEACHER",
    "PRETRAINED_TEACHER_INFO",
    "check_pretrained_teacher",
    "check_teacher_config",
    "get_teacher",
    "load_pretrained_teacher",
    "train_teacher",
]
