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
dSprites factors and their teacher. `kfactor.lab.demo.artefacts` loads and
checks the artefacts; `kfactor.lab.demo.report` builds the part of the report
shared with the demo's.
"""

import os
import time

from kfactor.factors.assembly import assemble
from kfactor.factors.plugins import load_factors
from kfactor.factors.publish import FACTORS_SUBDIR
from kfactor.lab.demo.artefacts import as_model
from kfactor.lab.demo.artefacts import check_model_tasks
from kfactor.lab.demo.artefacts import check_output
from kfactor.lab.demo.artefacts import code_dims
from kfactor.lab.demo.artefacts import dsprites_tasks
from kfactor.lab.demo.artefacts import read_run_report
from kfactor.lab.demo.artefacts import run_config
from kfactor.lab.demo.config import KD_STUDENT_FILE
from kfactor.lab.demo.config import REPORT_FILE
from kfactor.lab.demo.config import TEACHER_FILE
from kfactor.lab.demo.config import dsprites_splits
from kfactor.lab.demo.report import FACTORS
from kfactor.lab.demo.report import KD_STUDENT
from kfactor.lab.demo.report import TEACHER
from kfactor.lab.demo.report import scores_report
from kfactor.lab.demo.report import write_report
from kfactor.lab.demo.sections import evaluate_readers
from kfactor.lab.evaluation import plots
from kfactor.lab.evaluation.codes import saved_factor_readers
from kfactor.lab.evaluation.predictions import evaluate_accuracies
from kfactor.lab.evaluation.report import summary_rows

import numpy as np

EVALUATION_SUBDIR = "evaluation"


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

    The same evaluation as `kfactor demo` (`evaluate_accuracies` and
    `kfactor.lab.demo.sections.evaluate_readers`) on the seeded splits of
    `config`: per-task test accuracy of every model, and the
    disentanglement report of the teacher latent, the common code and the
    task codes. Leakage is measured on the code means only: a saved task
    factor serves its mean, not its posterior's variance, so the demo's
    sampled-code leakage (`leakage_sampled`) needs the run itself.

    Args:
        factors: from `kfactor.load_factors`: a common factor and task
            factors of procedural dSprites tasks.
        teacher: the teacher the factors were factorized from: a Keras model
            or a `.keras` path.
        config: a `DemoConfig`; its data fields (`DATA_FIELDS`) choose
            the splits and the number of codes scored.
        kd_student: optional KD baseline (model or `.keras` path).
        output_dir: where `report.json` and the figures go (None: nowhere).
        overwrite: replace an earlier `report.json` in `output_dir`.
        run_report: the report of the run the artefacts come from; adds
            `compared_with_run` (see `compare_reports`).

    Returns:
        The report: `config`, `tasks` (per task `teacher_accuracy`,
        `factor_accuracy`, [`kd_student_accuracy`]), `disentanglement`,
        `figures`, `sources`, `wall_seconds`; `lab.demo.format_table` prints
        it.

    Raises:
        ValueError / OSError: a model that cannot be loaded, tasks that are
            not dSprites tasks, a teacher or KD student without the
            factors' tasks and class counts, incompatible factors, an
            existing report in `output_dir`.
    """
    start = time.perf_counter()
    if output_dir is not None:
        check_output(output_dir, overwrite)
    tasks = dsprites_tasks(factors)
    teacher, teacher_path = as_model(teacher, TEACHER)
    kd_student, kd_path = as_model(kd_student, KD_STUDENT)
    check_model_tasks(teacher, factors, tasks, TEACHER)
    models = {TEACHER: teacher, FACTORS: assemble(factors, tasks=tasks)}
    if kd_student is not None:
        check_model_tasks(kd_student, factors, tasks, KD_STUDENT)
        models[KD_STUDENT] = kd_student
    readers = saved_factor_readers(factors, teacher, tasks)

    train_ds, test_ds = dsprites_splits(config)
    accuracies = evaluate_accuracies(models, test_ds)
    accuracies = {
        name: {t: scores[t] for t in tasks}
        for name, scores in accuracies.items()
    }
    disentanglement = evaluate_readers(
        readers, tasks, train_ds, test_ds, config
    )
    report = scores_report(config, tasks, accuracies, disentanglement)
    report["sources"] = {
        "teacher": teacher_path,
        "kd_student": kd_path,
        "factors": {name: factor.directory for name, factor in factors.items()},
    }
    if run_report is not None:
        report["compared_with_run"] = compare_reports(report, run_report)
    if output_dir is not None:
        report["figures"] = plots.report_figures(
            disentanglement,
            accuracies,
            output_dir,
            code_dims(factors, tasks),
        )
    report["wall_seconds"] = time.perf_counter() - start
    if output_dir is not None:
        write_report(report, output_dir)
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
        teacher = os.path.join(run_dir, TEACHER_FILE)
    if kd_student is None and config.kd_epochs:
        path = os.path.join(run_dir, KD_STUDENT_FILE)
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
            f" ({sources[0]} has no {REPORT_FILE}, so it is not a "
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
    "EVALUATION_SUBDIR",
    "compare_reports",
    "evaluate_run",
    "evaluate_saved",
    "evaluate_sources",
]
