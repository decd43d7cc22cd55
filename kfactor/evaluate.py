"""`kfactor evaluate`: re-scoring saved factors, a teacher and a KD student.

A finished `kfactor demo` run directory holds everything the evaluation
needs:

```none
<run_dir>/report.json        # its "config": the DemoConfig, hence the split
<run_dir>/teacher.keras
<run_dir>/kd_student.keras   # when the demo trained the KD baseline
<run_dir>/factors/           # common + task factors (kfactor.load_factors)
```

`evaluate_run(run_dir)` scores them again on the same seeded procedural
dSprites splits and writes `report.json` and the PNG figures to
`<run_dir>/evaluation/`. Factors on disk compute the in-memory logits and
codes (`publish_factors` checks it), so the accuracies and disentanglement
scores equal the demo's. `evaluate_sources(dirs, teacher, config)` and
`evaluate_saved(factors, teacher, config)` do the same for any saved
dSprites factors and their teacher.
"""

import dataclasses
import json
import os
import time

from kfactor import data as data_lib
from kfactor import demo
from kfactor.evaluation import plots
from kfactor.evaluation.codes import saved_factor_readers
from kfactor.evaluation.report import summary_rows
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.assembly import assemble
from kfactor.factors.plugins import load_factors
from kfactor.factors.publish import FACTORS_SUBDIR
from kfactor.layers.features import probe_teacher

import keras
import numpy as np

EVALUATION_SUBDIR = "evaluation"
#: The images of the procedural dSprites the factors must take.
DSPRITES_IMAGE_SHAPE = [64, 64, 1]
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

TEACHER = "teacher"
FACTORS = "factor networks"
KD_STUDENT = "KD student"
#: Model name in the accuracies -> key of the report's per-task scores.
ACCURACY_KEYS = {
    TEACHER: "teacher_accuracy",
    KD_STUDENT: "kd_student_accuracy",
    FACTORS: "factor_accuracy",
}


def is_run_dir(path):
    """Whether `path` is a `kfactor demo` run directory (has report.json)."""
    return os.path.isfile(os.path.join(path, demo.REPORT_FILE))


def read_run_report(run_dir):
    """The `report.json` of a demo run, checked to hold its config."""
    path = os.path.join(run_dir, demo.REPORT_FILE)
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
    known = {f.name for f in dataclasses.fields(demo.DemoConfig)}
    values = {k: v for k, v in report["config"].items() if k in known}
    unknown = sorted(set(overrides) - set(DATA_FIELDS))
    if unknown:
        raise ValueError(
            f"Expected overrides among {list(DATA_FIELDS)}. Received: "
            f"{unknown}. Fix: the other settings describe the training."
        )
    return demo.DemoConfig(**{**values, **overrides})


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


def _dsprites_tasks(factors):
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


def _code_dims(factors, tasks):
    probe = manifest_lib.probe_images(factors[tasks[0]].image_spec, num=2)
    return [int(factors[t].encode(probe).shape[-1]) for t in tasks]


def _as_model(model, what):
    if model is None or isinstance(model, keras.Model):
        return model, None
    return load_model(model, what), os.path.abspath(os.fspath(model))


def _check_output(output_dir, overwrite):
    path = os.path.join(output_dir, demo.REPORT_FILE)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"Expected an output folder without a {demo.REPORT_FILE}. "
            f"Received: {path} exists. Fix: pass --overwrite (overwrite="
            "True) to replace it, or another --out."
        )


def evaluate_saved(
    factors,
    teacher,
    config,
    kd_student=None,
    output_dir=None,
    overwrite=False,
    run_report=None,
):
    """Scores saved factors, their teacher and a KD student on dSprites.

    The same evaluation as `kfactor demo` (`demo.evaluate_accuracies` and
    `demo.evaluate_readers`) on the seeded splits of `config`: per-task
    test accuracy of every model, and the disentanglement report of the
    teacher latent, the common code and the task codes.

    Args:
        factors: from `kfactor.load_factors`: a common factor and task
            factors of procedural dSprites tasks.
        teacher: the teacher the factors were factorized from: a Keras model
            or a `.keras` path.
        config: a `demo.DemoConfig`; its data fields (`DATA_FIELDS`) choose
            the splits and the number of codes scored.
        kd_student: optional KD baseline (model or `.keras` path).
        output_dir: where `report.json` and the figures go (None: nowhere).
        overwrite: replace an earlier `report.json` in `output_dir`.
        run_report: the report of the run the artefacts come from; adds
            `compared_with_run` (see `compare_reports`).

    Returns:
        The report: `config`, `tasks` (per task `teacher_accuracy`,
        `factor_accuracy`, [`kd_student_accuracy`]), `disentanglement`,
        `figures`, `sources`, `wall_seconds`; `demo.format_table` prints it.

    Raises:
        ValueError / OSError: a model that cannot be loaded, tasks that are
            not dSprites tasks, a teacher or KD student without the
            factors' tasks and class counts, incompatible factors, an
            existing report in `output_dir`.
    """
    start = time.perf_counter()
    if output_dir is not None:
        _check_output(output_dir, overwrite)
    tasks = _dsprites_tasks(factors)
    teacher, teacher_path = _as_model(teacher, TEACHER)
    kd_student, kd_path = _as_model(kd_student, KD_STUDENT)
    check_model_tasks(teacher, factors, tasks, TEACHER)
    models = {TEACHER: teacher, FACTORS: assemble(factors, tasks=tasks)}
    if kd_student is not None:
        check_model_tasks(kd_student, factors, tasks, KD_STUDENT)
        models[KD_STUDENT] = kd_student
    readers = saved_factor_readers(factors, teacher, tasks)

    train_ds, test_ds = demo.dsprites_splits(config)
    accuracies = demo.evaluate_accuracies(models, test_ds)
    accuracies = {
        name: {t: scores[t] for t in tasks}
        for name, scores in accuracies.items()
    }
    disentanglement = demo.evaluate_readers(
        readers, tasks, train_ds, test_ds, config
    )
    report = {
        "config": dataclasses.asdict(config),
        "num_train_images": config.num_train,
        "num_test_images": config.num_test,
        "sources": {
            "teacher": teacher_path,
            "kd_student": kd_path,
            "factors": {
                name: factor.directory for name, factor in factors.items()
            },
        },
        "tasks": {
            task: {
                ACCURACY_KEYS[name]: accuracies[name][task] for name in models
            }
            for task in tasks
        },
        "disentanglement": disentanglement,
    }
    if run_report is not None:
        report["compared_with_run"] = compare_reports(report, run_report)
    if output_dir is not None:
        report["figures"] = plots.report_figures(
            disentanglement,
            accuracies,
            output_dir,
            _code_dims(factors, tasks),
        )
    report["wall_seconds"] = time.perf_counter() - start
    if output_dir is not None:
        demo.write_report(report, output_dir)
    return report


def compare_reports(report, reference):
    """Max |difference| of the accuracies and the headline scores
    (`report.summary_rows`) of two reports, over what both hold."""
    accuracy = [
        abs(value - reference["tasks"][task][key])
        for task, scores in report["tasks"].items()
        for key, value in scores.items()
        if key in reference["tasks"].get(task, {})
    ]
    scores = dict(summary_rows(reference["disentanglement"]))
    metric = [
        abs(value - scores[name])
        for name, value in summary_rows(report["disentanglement"])
        if name in scores
    ]
    return {
        "max_abs_accuracy_diff": float(max(accuracy, default=np.nan)),
        "max_abs_score_diff": float(max(metric, default=np.nan)),
    }


def evaluate_run(
    run_dir,
    output_dir=None,
    teacher=None,
    kd_student=None,
    overwrite=False,
    **overrides,
):
    """Re-evaluates a `kfactor demo` run directory's saved artefacts.

    Args:
        run_dir: the demo's `output_dir` (report.json, teacher.keras,
            factors/, and kd_student.keras when it trained one).
        output_dir: where to write (default `<run_dir>/evaluation/`).
        teacher, kd_student: `.keras` paths replacing the run's own.
        overwrite: replace an earlier evaluation's `report.json`.
        **overrides: `DemoConfig` data fields (`DATA_FIELDS`) to change.

    Returns:
        The report of `evaluate_saved`. Without overrides, its
        `compared_with_run` holds the max |difference| to the demo's
        accuracies and scores: 0 when the artefacts are unchanged.

    Example:

    >>> report = evaluate_run("kfactor_runs/demo")       # doctest: +SKIP
    >>> report["compared_with_run"]["max_abs_accuracy_diff"]  # doctest: +SKIP
    0.0
    """
    run_dir = os.path.abspath(os.fspath(run_dir))
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(
            f"Expected a `kfactor demo` run directory. Received: {run_dir} "
            f"({'a file' if os.path.exists(run_dir) else 'missing'})."
        )
    run_report = read_run_report(run_dir)
    config = run_config(run_report, **overrides)
    if teacher is None:
        teacher = os.path.join(run_dir, demo.TEACHER_FILE)
    if kd_student is None and config.kd_epochs:
        path = os.path.join(run_dir, demo.KD_STUDENT_FILE)
        kd_student = path if os.path.isfile(path) else None
    return evaluate_saved(
        load_factors(os.path.join(run_dir, FACTORS_SUBDIR)),
        teacher,
        config,
        kd_student=kd_student,
        output_dir=output_dir or os.path.join(run_dir, EVALUATION_SUBDIR),
        overwrite=overwrite,
        run_report=None if overrides else run_report,
    )


def evaluate_sources(
    sources,
    teacher,
    config,
    kd_student=None,
    output_dir=None,
    overwrite=False,
):
    """`evaluate_saved` of the factors under `sources` (directories).

    Unlike a run directory, factor sources carry no teacher and no data
    settings: `teacher` is required and `config` gives the splits.

    Raises:
        ValueError / OSError: no source, a missing one, no teacher, no
            `output_dir`, and whatever `evaluate_saved` raises.
    """
    sources = [os.fspath(s) for s in sources]
    if not sources:
        raise ValueError(
            "Expected a `kfactor demo` run directory or factor directories. "
            "Received: none. Fix: `kfactor evaluate RUN_DIR`, or `kfactor "
            "evaluate FACTOR_DIRS --teacher=PATH.keras --out=DIR`."
        )
    for source in sources:
        if not os.path.exists(source):
            raise FileNotFoundError(
                "Expected a `kfactor demo` run directory or factor "
                f"directories. Received: {os.path.abspath(source)} does not "
                "exist. Fix: check the path."
            )
    if teacher is None:
        why = (
            f" ({sources[0]} has no {demo.REPORT_FILE}, so it is not a "
            "`kfactor demo` run directory)"
            if len(sources) == 1 and os.path.isdir(sources[0])
            else ""
        )
        raise ValueError(
            "Expected --teacher=PATH.keras to evaluate factor sources"
            f"{why}. Received: no teacher. Fix: pass the teacher the "
            "factors were factorized from, or a run directory."
        )
    if output_dir is None:
        raise ValueError(
            "Expected --out=DIR to evaluate factor sources. Received: none."
        )
    return evaluate_saved(
        load_factors(*sources),
        teacher,
        config,
        kd_student=kd_student,
        output_dir=output_dir,
        overwrite=overwrite,
    )


__all__ = [
    "ACCURACY_KEYS",
    "DATA_FIELDS",
    "DSPRITES_IMAGE_SHAPE",
    "EVALUATION_SUBDIR",
    "FACTORS",
    "KD_STUDENT",
    "TEACHER",
    "check_model_tasks",
    "compare_reports",
    "evaluate_run",
    "evaluate_saved",
    "evaluate_sources",
    "is_run_dir",
    "load_model",
    "read_run_report",
    "run_config",
]
