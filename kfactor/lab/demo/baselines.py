"""The demo's baselines: the pretrained ones shipped with kfactor, or trained.

The KD student (of the factor networks' total size) and the single-task
networks are the fair references of the demo's claims: from scratch, with
the factorization's images, steps and code size. Training them takes
longer than the factorization itself (on 2 cores, about 450 s against
320 s on an AVX-512 Xeon), so kfactor ships them trained, as it ships the
teacher: `python examples/make_pretrained_baselines.py` made them with the
default `DemoConfig`, and `kfactor demo --train_baselines` trains them in
the run instead (what `examples/three_seeds.py` does, one pair per seed).

Before loading, `check_pretrained_baselines` compares every `DemoConfig`
field that decides a baseline (`baseline_config`: the split, the
architecture, the schedule, the training seed, the pretrained teacher)
with the fields they were trained with, and refuses a mismatch with one
error naming the field and `--train_baselines`.

Each baseline's training starts from its own seed (`run_seed`, set before
it is built), so a baseline trained in a run and one trained by the script
are the same network whatever the factorization before it did.
"""

import json
import logging
import os

from kfactor.lab.demo.artefacts import load_model
from kfactor.lab.demo.config import TEACHER_FIELDS
from kfactor.lab.demo.networks import train_kd_student
from kfactor.lab.demo.networks import train_single_task_networks
from kfactor.lab.demo.report import KD_STUDENT as KD
from kfactor.lab.demo.report import SINGLE_TASK
from kfactor.lab.demo.teacher import PRETRAINED_DIR
from kfactor.lab.demo.teacher import check_teacher_config

import keras

logger = logging.getLogger(__name__)

PRETRAINED_KD_STUDENT = os.path.join(
    PRETRAINED_DIR, "dsprites_kd_student.keras"
)
PRETRAINED_SINGLE_TASK = os.path.join(
    PRETRAINED_DIR, "dsprites_single_task.keras"
)
PRETRAINED_BASELINES_INFO = os.path.join(
    PRETRAINED_DIR, "dsprites_baselines.json"
)
#: `DemoConfig` fields that decide both baselines (their teacher, data,
#: architecture and schedule); `kd_epochs` / `single_task_epochs` decide
#: one each.
BASELINE_FIELDS = (
    *TEACHER_FIELDS,
    "train_teacher",
    "batch_size",
    "learning_rate",
    "normalization",
    "held_out",
    "run_seed",
)
#: Baseline name -> (its epochs field, its shipped file).
BASELINES = {
    KD: ("kd_epochs", PRETRAINED_KD_STUDENT),
    SINGLE_TASK: ("single_task_epochs", PRETRAINED_SINGLE_TASK),
}


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def baseline_config(config):
    """The fields of `config` that decide the baselines, JSON-ready."""
    fields = (*BASELINE_FIELDS, *(epochs for epochs, _ in BASELINES.values()))
    return {name: _json_value(getattr(config, name)) for name in fields}


def wanted_baselines(config):
    """The baselines `config` asks for (`kd_epochs`, `single_task_epochs`
    above 0)."""
    return [
        name
        for name, (epochs, _) in BASELINES.items()
        if getattr(config, epochs)
    ]


def check_pretrained_baselines(config, info_path=None):
    """Checks that the shipped baselines fit `config`; returns their info.

    Returns None when `config` trains its baselines or asks for none.
    Raises `ValueError` (saying to pass `--train_baselines`) when a file is
    missing or a field that decides a wanted baseline differs from the one
    it was trained with. Cheap: it reads only the JSON.
    """
    wanted = wanted_baselines(config)
    if config.train_baselines or not wanted:
        return None
    info_path = info_path or PRETRAINED_BASELINES_INFO
    files = [info_path] + [BASELINES[name][1] for name in wanted]
    for file in files:
        if not os.path.isfile(file):
            raise ValueError(
                f"The pretrained baseline file {file} is missing. Fix: "
                "reinstall kfactor, or pass --train_baselines to train the "
                "baselines in the run."
            )
    with open(info_path) as f:
        info = json.load(f)
    trained_with = info["config"]
    asked = baseline_config(config)
    fields = [*BASELINE_FIELDS, *(BASELINES[name][0] for name in wanted)]
    for name in fields:
        if trained_with.get(name) != asked[name]:
            raise ValueError(
                f"The pretrained baselines were trained with {name}="
                f"{trained_with.get(name)!r}; this run asks for "
                f"{asked[name]!r}. Fix: pass --train_baselines to train the "
                "KD student and the single-task networks in the run (as long "
                "as the factorization), or keep the default for that flag."
            )
    return info


def check_config(config):
    """Raises `ValueError` before anything is written if `config` cannot
    run: a split larger than the grid, or a pretrained teacher or baselines
    that do not fit it."""
    check_teacher_config(config)
    check_pretrained_baselines(config)


def load_pretrained_baselines(config, info_path=None):
    """`({name: model}, info)` of the shipped baselines `config` asks for,
    checked first (`check_pretrained_baselines`)."""
    info = check_pretrained_baselines(config, info_path)
    if info is None:
        return {}, None
    models = {}
    for name in wanted_baselines(config):
        logger.info("Loading the pretrained %s (%s).", name, BASELINES[name][1])
        models[name] = load_model(
            BASELINES[name][1],
            f"pretrained {name} (retrain it: python "
            "examples/make_pretrained_baselines.py, or --train_baselines)",
        )
    return models, info


def train_baselines(teacher, train_ds, config):
    """`({name: model}, {name: seconds})` of the baselines `config` asks
    for, trained now, each from the seed `config.run_seed`."""
    trainers = {KD: train_kd_student, SINGLE_TASK: train_single_task_networks}
    models, seconds = {}, {}
    for name in wanted_baselines(config):
        epochs = getattr(config, BASELINES[name][0])
        logger.info("Training the %s baseline (%d epochs).", name, epochs)
        keras.utils.set_random_seed(config.run_seed)
        models[name], seconds[name] = trainers[name](teacher, train_ds, config)
    return models, seconds


def get_baselines(teacher, train_ds, config):
    """The run's baselines: `({name: model}, report entries)`.

    Pretrained unless `config.train_baselines` (see the module doc). The
    report entries are the `*_train_seconds` (0 for shipped ones) and
    `baselines`: where they come from and what they were trained with.
    """
    if config.train_baselines:
        models, seconds = train_baselines(teacher, train_ds, config)
        source = {"source": "trained", "trained_with": baseline_config(config)}
    else:
        models, info = load_pretrained_baselines(config)
        seconds = {name: 0.0 for name in models}
        source = {
            "source": "pretrained",
            "files": {
                name: os.path.relpath(BASELINES[name][1], PRETRAINED_DIR)
                for name in models
            },
            "trained_with": info and info["config"],
            "train_seconds": info and info["train_seconds"],
        }
    entries = {
        "kd_student_train_seconds": seconds.get(KD),
        "single_task_train_seconds": seconds.get(SINGLE_TASK),
        "baselines": source if models else None,
    }
    return models, entries


__all__ = [
    "BASELINE_FIELDS",
    "PRETRAINED_BASELINES_INFO",
    "PRETRAINED_KD_STUDENT",
    "PRETRAINED_SINGLE_TASK",
    "baseline_config",
    "check_config",
    "check_pretrained_baselines",
    "get_baselines",
    "load_pretrained_baselines",
    "train_baselines",
    "wanted_baselines",
]
