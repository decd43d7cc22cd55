"""`run_demo`: dSprites teacher -> factor networks -> report.json.

`run_demo(DemoConfig())` renders procedural dSprites, loads (or trains) a
multi-task teacher, factorizes it into one common factor and a task factor
per dSprites factor, scores everything on the held-out split, publishes the
factors and writes `report.json` in `output_dir`.
"""

import logging
import os
import resource
import shutil
import sys
import time

from kfactor.factors.publish import publish_factors
from kfactor.lab.baselines import project_single_task_codes
from kfactor.lab.demo.baselines import check_config
from kfactor.lab.demo.baselines import get_baselines
from kfactor.lab.demo.config import KD_STUDENT_FILE
from kfactor.lab.demo.config import TEACHER_FILE
from kfactor.lab.demo.config import DemoConfig
from kfactor.lab.demo.config import dsprites_splits
from kfactor.lab.demo.networks import build_factorizer
from kfactor.lab.demo.networks import optimizer_for
from kfactor.lab.demo.networks import timed_fit
from kfactor.lab.demo.report import FACTORS
from kfactor.lab.demo.report import KD_STUDENT
from kfactor.lab.demo.report import SINGLE_TASK
from kfactor.lab.demo.report import TEACHER
from kfactor.lab.demo.report import scores_report
from kfactor.lab.demo.report import undertrained_baselines
from kfactor.lab.demo.report import write_report
from kfactor.lab.demo.sections import evaluate_factorization
from kfactor.lab.demo.sections import single_task_leakage
from kfactor.lab.demo.teacher import get_teacher
from kfactor.lab.evaluation import plots
from kfactor.lab.evaluation import tensorboard
from kfactor.lab.evaluation.predictions import evaluate_predictions
from kfactor.training.callbacks import CommonCollapseMonitor
from kfactor.training.code_subspace import project_task_codes

import keras

logger = logging.getLogger(__name__)

#: The keys of `publish_factors`' summary that the report keeps.
PUBLISHED_KEYS = (
    "factors_dir",
    "export_dir",
    "assembled_max_abs_diff",
    "export_max_abs_diff",
)


def run_demo(config=None):
    """Runs the demo and returns its report (also written as JSON).

    Example:

    >>> report = run_demo(DemoConfig(num_train=256, num_test=128,
    ...     factor_epochs=1, verbose=0,
    ...     output_dir=str(tmp_path)))                    # doctest: +SKIP
    >>> sorted(report["tasks"])                           # doctest: +SKIP
    ['orientation', 'pos_x', 'pos_y', 'scale', 'shape']
    """
    config = config or DemoConfig()
    check_config(config)
    keras.utils.set_random_seed(config.run_seed)
    os.makedirs(config.output_dir, exist_ok=True)
    logs = os.path.join(config.output_dir, tensorboard.LOGS_DIR)
    shutil.rmtree(logs, ignore_errors=True)  # one run's curves, not two
    wall_start = time.perf_counter()
    train_ds, test_ds = dsprites_splits(config)
    teacher, teacher_info = get_teacher(config)
    teacher.save(os.path.join(config.output_dir, TEACHER_FILE))
    models, timings, monitor = train_models(teacher, train_ds, test_ds, config)
    if config.project_codes:
        subspaces = project_codes(models[FACTORS], config)
        single_task_subspaces = (
            project_single_task(models[SINGLE_TASK], config)
            if SINGLE_TASK in models
            else {}
        )
    logger.info("Evaluating.")
    report, accuracies = score_models(models, test_ds, config)
    if config.project_codes:
        report["code_subspaces"] = subspaces
        report["single_task_code_subspaces"] = single_task_subspaces
    tensorboard.write_figures(report["figures"], logs)
    report["tensorboard_logdir"] = logs
    report["teacher"] = teacher_info
    report["teacher_train_seconds"] = teacher_info["train_seconds"]
    report["common_factor"]["collapse_warning"] = (
        monitor.collapsed_at is not None
    )
    report.update(timings)
    logger.info("Saving, assembling and exporting the factors.")
    published = publish_factors(
        models[FACTORS],
        config.output_dir,
        test_accuracy=accuracies[FACTORS],
        probe_images=next(iter(test_ds))[0][:64],
        overwrite=True,
    )
    report.update({key: published[key] for key in PUBLISHED_KEYS})
    report["wall_seconds"] = time.perf_counter() - wall_start
    report["peak_rss_bytes"] = peak_rss_bytes()
    write_report(report, config.output_dir)
    return report


def train_models(teacher, train_ds, test_ds, config):
    """Factorizes `teacher`; trains (or loads) the baselines `config` asks
    for (`kfactor.lab.demo.baselines`).

    Returns:
        `(models, timings, monitor)`: `{model name: model}` (the names of
        `kfactor.lab.demo.report`), the report's `*_seconds` and images/s
        entries, and the factorization's `CommonCollapseMonitor`.
    """
    logger.info("Factorizing (%d epochs).", config.factor_epochs)
    factorizer = build_factorizer(teacher, config)
    factorizer.compile(optimizer=optimizer_for(config, config.factor_epochs))
    monitor = CommonCollapseMonitor()
    factorization_logs = os.path.join(
        config.output_dir, tensorboard.LOGS_DIR, "factorization"
    )
    seconds, rate = timed_fit(
        factorizer,
        train_ds,
        config.factor_epochs,
        config,
        validation_data=test_ds,
        callbacks=[monitor, tensorboard.fit_callback(factorization_logs)],
    )
    baselines, entries = get_baselines(teacher, train_ds, config)
    models = {TEACHER: teacher, FACTORS: factorizer, **baselines}
    timings = {
        "factorization_seconds": seconds,
        "factorization_images_per_second": rate,
        **entries,
    }
    if KD_STUDENT in models:
        models[KD_STUDENT].save(
            os.path.join(config.output_dir, KD_STUDENT_FILE)
        )
    return models, timings, monitor


def project_codes(factorizer, config, max_accuracy_drop=0.001):
    """Projects the task codes' means in place
    (`kfactor.training.project_task_codes`); returns `{task: summary}`."""
    logger.info("Projecting the task codes.")
    subspaces = project_task_codes(
        factorizer, **_projection_data(config, max_accuracy_drop)
    )
    return {task: s.summary() for task, s in subspaces.items()}


def project_single_task(networks, config, max_accuracy_drop=0.001):
    """Projects the single-task networks' codes in place, as
    `project_codes` projects the task codes, so that the leakage
    comparison reads both projected; returns `{task: summary}`."""
    logger.info("Projecting the single-task networks' codes.")
    subspaces = project_single_task_codes(
        networks, **_projection_data(config, max_accuracy_drop)
    )
    return {task: s.summary() for task, s in subspaces.items()}


def _projection_data(config, max_accuracy_drop):
    """Both projections' fitting data: a fresh train split (its seeded
    epoch-0 order), as many images as the metrics read."""
    return {
        "dataset": dsprites_splits(config)[0],
        "max_examples": min(config.eval_train_examples, config.num_train),
        "max_accuracy_drop": max_accuracy_drop,
    }


def score_models(models, test_ds, config):
    """The report's scores of the trained `models` (`train_models`).

    Returns:
        `(report, accuracies)`: the shared `scores_report` plus
        `orientation_accuracy`, `common_factor`, `transfer`, `figures` and
        the single-task leakage (when that baseline ran); and
        `{model name: {task: test accuracy}}`.
    """
    factorizer = models[FACTORS]
    accuracies, orientation = evaluate_predictions(models, test_ds)
    # A fresh train split: its first pass is the seeded epoch-0 order, not
    # the order after training, so `kfactor evaluate` reads the same codes.
    disentanglement, common, transfer = evaluate_factorization(
        factorizer,
        accuracies[TEACHER],
        dsprites_splits(config)[0],
        test_ds,
        config,
    )
    if SINGLE_TASK in models:
        disentanglement["single_task_leakage"] = single_task_leakage(
            models[SINGLE_TASK],
            disentanglement,
            dsprites_splits(config)[0],
            test_ds,
            config,
        )
    figures = plots.report_figures(
        disentanglement,
        accuracies,
        config.output_dir,
        config.latent_dim,
        transfer=transfer,
    )
    report = scores_report(
        config, factorizer.task_names, accuracies, disentanglement
    )
    report["orientation_accuracy"] = orientation
    report["undertrained_baselines"] = undertrained_baselines(accuracies)
    report["common_factor"] = common
    report["transfer"] = transfer
    report["figures"] = figures
    return report, accuracies


def peak_rss_bytes():
    """Peak resident memory of this process so far (Linux/macOS units)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


__all__ = [
    "PUBLISHED_KEYS",
    "peak_rss_bytes",
    "project_codes",
    "project_single_task",
    "run_demo",
    "score_models",
    "train_models",
]
