"""What a `kfactor demo` run leaves on disk, read back and checked.

A run directory holds `report.json` (its `"config"` is the `DemoConfig`,
hence the splits), `teacher.keras`, `factors/` and, when the demo trained
the KD baseline, `kd_student.keras`. These functions load such artefacts
(or any saved dSprites factors and their teacher) and check them before
`kfactor.lab.demo.rescoring` scores them, each failure one clear error.
"""

import dataclasses
import json
import os

from kfactor.factors import manifest as manifest_lib
from kfactor.lab import datasets as data_lib
from kfactor.lab.datasets.render import OBSERVATION_SHAPE
from kfactor.lab.demo.config import REPORT_FILE
from kfactor.lab.demo.config import DemoConfig
from kfactor.layers.features import probe_teacher

import keras

#: The images of the procedural dSprites the factors must take (as a
#: factor's `image_spec` stores it).
DSPRITES_IMAGE_SHAPE = list(OBSERVATION_SHAPE)

#: `DemoConfig` fields that choose the data and the evaluation, the ones
#: `evaluate_run` lets a caller change (the rest only describe training).
DATA_FIELDS = (
    "num_train",
    "num_test",
    "batch_size",
    "eval_train_examples",
    "eval_test_examples",
    "dci",
    "seed",
)


def is_run_dir(path):
    """Whether `path` is a `kfactor demo` run directory (has report.json)."""
    return os.path.isfile(os.path.join(path, REPORT_FILE))


def read_run_report(run_dir):
    """The `report.json` of a demo run, checked to hold its config."""
    path = os.path.join(run_dir, REPORT_FILE)
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"Expected a readable JSON report in {path}. Received: "
            f"{type(err).__name__}: {err}. Fix: re-run `kfactor demo`."
        ) from err
    if not isinstance(report, dict) or not isinstance(
        report.get("config"), dict
    ):
        raise ValueError(
            f"Expected {path} to be a `kfactor demo` report with a "
            "'config' object. Received: none. Fix: pass the directory "
            "`kfactor demo --output_dir` wrote."
        )
    return report


def run_config(report, **overrides):
    """The `DemoConfig` of a run's report, with `overrides` applied."""
    known = {f.name for f in dataclasses.fields(DemoConfig)}
    values = {k: v for k, v in report["config"].items() if k in known}
    unknown = sorted(set(overrides) - set(DATA_FIELDS))
    if unknown:
        raise ValueError(
            f"Expected overrides among {list(DATA_FIELDS)}. Received: "
            f"{unknown}. Fix: the other settings describe the training."
        )
    return DemoConfig(**{**values, **overrides})


def load_model(path, what):
    """Loads a `.keras` model, or raises one clear error naming `what`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Expected the {what} as a .keras file. Received: {path} "
            f"({'a directory' if os.path.isdir(path) else 'missing'})."
        )
    try:
        return keras.saving.load_model(path)
    except Exception as err:  # Keras raises many types for a bad file.
        raise ValueError(
            f"Expected a loadable Keras model in {path} (the {what}). "
            f"Received: {type(err).__name__}: {str(err)[:300]}"
        ) from err


def as_model(model, what):
    """`(model, its absolute path)`: a Keras model (or None) as is, with no
    path; a `.keras` path loaded with `load_model`."""
    if model is None or isinstance(model, keras.Model):
        return model, None
    return load_model(model, what), os.path.abspath(os.fspath(model))


def dsprites_tasks(factors):
    """The factors' tasks in dSprites factor order, checked."""
    tasks = [f.task for f in factors.values() if f.role == manifest_lib.TASK]
    unknown = sorted(set(tasks) - set(data_lib.DSPRITES_TASKS))
    if unknown or not tasks:
        raise ValueError(
            "Expected task factors of procedural dSprites tasks "
            f"{list(data_lib.DSPRITES_TASKS)}. Received: tasks {tasks} "
            f"(unknown: {unknown}). Fix: evaluate dSprites factors."
        )
    for factor in factors.values():
        if factor.image_spec["shape"] != DSPRITES_IMAGE_SHAPE:
            raise ValueError(
                f"Expected factors taking dSprites images shaped "
                f"{DSPRITES_IMAGE_SHAPE}. Received: "
                f"{factor.image_spec['shape']} ({factor.directory})."
            )
    return [t for t in data_lib.DSPRITES_TASKS if t in tasks]


def check_model_tasks(model, factors, tasks, what):
    """Raises unless `model` outputs every task with the factor's classes."""
    try:
        classes = probe_teacher(model, tuple(DSPRITES_IMAGE_SHAPE))
    except Exception as err:  # A wrong input shape raises many types.
        raise ValueError(
            f"Expected the {what} to map dSprites images "
            f"{DSPRITES_IMAGE_SHAPE} to {{task: logits}}. Received: "
            f"{type(err).__name__}: {str(err)[:300]}"
        ) from err
    wrong = {
        t: classes.get(t)
        for t in tasks
        if classes.get(t) != factors[t].num_classes
    }
    if wrong:
        raise ValueError(
            f"Expected the {what} to output the factors' tasks "
            f"{ {t: factors[t].num_classes for t in tasks} } (task: "
            f"classes). Received: outputs {classes}, mismatched {wrong}. "
            f"Fix: pass the {what} these factors were factorized from."
        )


def code_dims(factors, tasks):
    """The code size of each of `tasks`' factors, read from probe images."""
    probe = manifest_lib.probe_images(factors[tasks[0]].image_spec, num=2)
    return [int(factors[t].encode(probe).shape[-1]) for t in tasks]


def check_output(output_dir, overwrite):
    """Raises `FileExistsError` if `output_dir` holds a report that
    `overwrite` does not allow to replace."""
    path = os.path.join(output_dir, REPORT_FILE)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"Expected an output folder without a {REPORT_FILE}. "
            f"Received: {path} exists. Fix: pass --overwrite (overwrite="
            "True) to replace it, or another --out."
        )


__all__ = [
    "DATA_FIELDS",
    "DSPRITES_IMAGE_SHAPE",
    "as_model",
    "check_model_tasks",
    "check_output",
    "code_dims",
    "dsprites_tasks",
    "is_run_dir",
    "load_model",
    "read_run_report",
    "run_config",
]
