"""What projecting the task codes does: leakage and accuracy, before/after.

For each training seed this factorizes the shipped dSprites teacher with
the demo's defaults, from scratch (or loads that seed's saved weights from
an earlier run of this script), then measures the factor networks' test
accuracy and the task codes' leakage on the code mean (worst cell outside
the ones dSprites forces, linear and kNN probes), projects the task codes
onto the directions their factor networks read (`kfactor demo
--project_codes`' step: `kfactor.training.project_task_codes`, fitted on
train images) and
measures again, on the same weights. With `--single_task` (the default) it
reads the shipped single-task networks (trained at the demo's training
seed; the same reference for every seed) beside them, before and after
projecting those the same way
(`kfactor.lab.baselines.project_single_task_codes`): their worst cell, and
the cells where a task code leaks no less than the single-task network.

    python examples/code_projection.py --seeds=0,1,2

It prints a table and writes `--out` (JSON). A seed takes about 12
minutes on 2 CPU cores when it trains, 2 when its weights are saved.
"""

import dataclasses
import json
import math
import os

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.lab.demo import results
from kfactor.lab.demo.baselines import load_pretrained_baselines
from kfactor.lab.demo.config import DemoConfig
from kfactor.lab.demo.config import dsprites_splits
from kfactor.lab.demo.networks import build_factorizer
from kfactor.lab.demo.networks import optimizer_for
from kfactor.lab.demo.networks import timed_fit
from kfactor.lab.demo.report import FACTORS
from kfactor.lab.demo.report import SINGLE_TASK
from kfactor.lab.demo.run import project_codes
from kfactor.lab.demo.run import project_single_task
from kfactor.lab.demo.sections import LEAKAGE_KEYS
from kfactor.lab.demo.sections import collect_split_codes
from kfactor.lab.demo.sections import leakage_sections
from kfactor.lab.demo.sections import single_task_leakage
from kfactor.lab.demo.teacher import get_teacher
from kfactor.lab.evaluation.codes import factorizer_readers
from kfactor.lab.evaluation.predictions import evaluate_predictions

import keras
import numpy as np
from absl import app
from absl import flags

WEIGHTS_FILE = "factorizer.weights.h5"
#: `DemoConfig` sizes that flags may shrink (the defaults are the demo's).
SIZE_FLAGS = (
    "num_train",
    "num_test",
    "factor_epochs",
    "eval_train_examples",
    "eval_test_examples",
)


def define_flags(flag_values=flags.FLAGS):
    """Defines this script's flags on `flag_values`."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds.", **define)
    flags.DEFINE_string(
        "runs_dir",
        "kfactor_runs/code_projection",
        "Each seed's weights (reused when present).",
        **define,
    )
    flags.DEFINE_string(
        "out", "docs/code_projection.json", "The results (JSON).", **define
    )
    flags.DEFINE_float(
        "max_accuracy_drop",
        0.001,
        "Train accuracy a factor network may lose to the projection.",
        lower_bound=0.0,
        upper_bound=0.999,
        **define,
    )
    for name in SIZE_FLAGS:
        flags.DEFINE_integer(
            name,
            getattr(DemoConfig, name),
            f"DemoConfig.{name} (smaller for a quick check).",
            lower_bound=0 if name == "factor_epochs" else 1,
            **define,
        )
    flags.DEFINE_bool(
        "single_task",
        True,
        "Also read the shipped single-task networks, projected the same way.",
        **define,
    )
    flags.DEFINE_integer("verbose", 2, "Keras verbosity.", **define)


def trained_factorizer(config):
    """The seed's factorizer: trained now, or loaded from `output_dir`."""
    train_ds, test_ds = dsprites_splits(config)
    teacher, _ = get_teacher(config)
    factorizer = build_factorizer(teacher, config)
    path = os.path.join(config.output_dir, WEIGHTS_FILE)
    if os.path.isfile(path):
        images, _ = next(iter(test_ds))
        factorizer(images[:1])  # builds every variable before loading
        factorizer.load_weights(path)
        return factorizer, test_ds
    factorizer.compile(optimizer=optimizer_for(config, config.factor_epochs))
    timed_fit(factorizer, train_ds, config.factor_epochs, config)
    os.makedirs(config.output_dir, exist_ok=True)
    factorizer.save_weights(path)
    return factorizer, test_ds


def shipped_single_task_networks(config):
    """The shipped single-task networks (trained at the demo's training
    seed, on the same splits), checked against `config` but for its
    training seed: every seed reads the same reference."""
    models, _ = load_pretrained_baselines(
        dataclasses.replace(config, kd_epochs=0, training_seed=None)
    )
    return models[SINGLE_TASK]


def single_task_summary(networks, sections, test_ds, config):
    """The single-task networks' worst cell per probe, and the cells where
    the task codes leak no less than they do."""
    reference = single_task_leakage(
        networks,
        {LEAKAGE_KEYS[probe]: section for probe, section in sections.items()},
        dsprites_splits(config)[0],
        test_ds,
        config,
    )
    return {
        probe: {
            "worst": section["max_nonintrinsic_above_chance"],
            "cells_not_below": section["nonintrinsic_cells"]
            - section["nonintrinsic_cells_kf_below_single_task"],
            "cells": section["nonintrinsic_cells"],
        }
        for probe, section in reference.items()
    }


def measure(factorizer, test_ds, config, single_task=None):
    """Test accuracies (on the first `eval_test_examples` test images) and
    the code mean's leakage sections (and, given the single-task networks,
    their `single_task_summary`)."""
    batches = math.ceil(config.eval_test_examples / config.batch_size)
    accuracies, _ = evaluate_predictions(
        {FACTORS: factorizer}, test_ds.take(batches)
    )
    readers = factorizer_readers(factorizer)
    tasks = factorizer.task_names
    train, test = collect_split_codes(
        {task: readers[task] for task in tasks},
        dsprites_splits(config)[0],
        test_ds,
        config,
    )
    sections = leakage_sections(train, test, tasks, config)
    measured = {
        "accuracy": accuracies[FACTORS],
        "leakage": {
            probe: section["max_nonintrinsic_above_chance"]
            for probe, section in sections.items()
        },
        "leakage_matrices": {
            probe: section["matrix"] for probe, section in sections.items()
        },
    }
    if single_task is not None:
        measured["single_task"] = single_task_summary(
            single_task, sections, test_ds, config
        )
    return measured


def run_seed(seed, flag_values):
    """Trains (or loads) one seed, measures, projects, measures again."""
    config = DemoConfig(
        training_seed=seed,
        output_dir=os.path.join(flag_values.runs_dir, f"seed{seed}"),
        verbose=flag_values.verbose,
        **{name: flag_values[name].value for name in SIZE_FLAGS},
    )
    keras.utils.set_random_seed(config.run_seed)
    factorizer, test_ds = trained_factorizer(config)
    single = None
    if flag_values.single_task:
        single = shipped_single_task_networks(config)
    before = measure(factorizer, test_ds, config, single)
    drop = flag_values.max_accuracy_drop
    subspaces = project_codes(factorizer, config, max_accuracy_drop=drop)
    run = {"seed": seed, "subspaces": subspaces}
    if single is not None:
        run["single_task_subspaces"] = project_single_task(
            single, config, max_accuracy_drop=drop
        )
    after = measure(factorizer, test_ds, config, single)
    return {**run, "before": before, "after": after}


def spread(values):
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def table(runs):
    """Markdown: mean ± std over the seeds, before and after."""
    tasks = list(runs[0]["before"]["accuracy"])
    lines = ["| | before | after |", "|---|---|---|"]
    for probe in ("linear", "knn"):
        cells = [
            spread([r[when]["leakage"][probe] for r in runs])
            for when in ("before", "after")
        ]
        lines.append(
            f"| worst leakage cell, {probe}, mean | " + " | ".join(cells) + " |"
        )
    if all("single_task" in r["before"] for r in runs):
        for probe in ("linear", "knn"):
            for key, name in (
                ("worst", "single-task worst cell"),
                ("cells_not_below", "cells not below single-task"),
            ):
                cells = [
                    spread([r[when]["single_task"][probe][key] for r in runs])
                    for when in ("before", "after")
                ]
                lines.append(
                    f"| {name}, {probe}, mean | " + " | ".join(cells) + " |"
                )
    for task in tasks:
        cells = [
            spread([r[when]["accuracy"][task] for r in runs])
            for when in ("before", "after")
        ]
        lines.append(
            f"| factor net accuracy, {task} | " + " | ".join(cells) + " |"
        )
    kept = {
        task: spread([r["subspaces"][task]["kept"] for r in runs])
        for task in tasks
    }
    lines.append("")
    lines.append(
        "kept directions of 32: "
        + ", ".join(f"{t} {k}" for t, k in kept.items())
    )
    return "\n".join(lines)


def run_with_flags(flag_values):
    """Runs every seed; writes and returns the summary."""
    runs = [run_seed(int(seed), flag_values) for seed in flag_values.seeds]
    summary = {
        "cpu": results.cpu_name(),
        "max_accuracy_drop": flag_values.max_accuracy_drop,
        "runs": runs,
    }
    out = os.path.abspath(flag_values.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def main(argv):
    del argv
    summary = run_with_flags(flags.FLAGS)
    print(table(summary["runs"]))
    print(f"\nWrote {flags.FLAGS.out}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
