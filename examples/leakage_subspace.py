"""Where a demo run's task codes leak: their loud directions or faint ones.

The demo's leakage probe whitens each task code's mean, so a direction that
holds a hundredth of the code's variance counts as much as the main one.
This script splits every code by PCA (fitted on train codes) into its top
components, the fewest that hold `--variance` of the code's train variance,
and the rest. It then probes every factor the code is not about, outside
the cells dSprites forces, on the whole code, on the top and on the rest
(`kfactor.lab.disentanglement.principal_subspace_probe`), and the code's
own task on the top. A leak that only the rest reads sits in directions
that the per-sample KL barely charges (method reference section 8).

    kfactor demo                                  # or any run directory
    python examples/leakage_subspace.py --run_dir=kfactor_runs/demo

It prints a table and writes `leakage_subspace.json` into the run
directory. About 2 minutes for the default demo on 2 CPU cores.
"""

import json
import os

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.data.collect import collect_outputs
from kfactor.lab import datasets
from kfactor.lab import demo
from kfactor.lab.disentanglement import linear_probe
from kfactor.lab.disentanglement import principal_subspace_probe
from kfactor.lab.evaluation.codes import saved_factor_readers

import keras
import numpy as np
from absl import app
from absl import flags
from sklearn import decomposition

OUTPUT_FILE = "leakage_subspace.json"


def define_flags(flag_values=flags.FLAGS):
    """Defines this script's flags on `flag_values`."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string(
        "run_dir", "kfactor_runs/demo", "A `kfactor demo` run.", **define
    )
    flags.DEFINE_float(
        "variance",
        0.99,
        "Train variance the top holds.",
        lower_bound=0.0,
        upper_bound=1.0,
        **define,
    )
    flags.DEFINE_integer(
        "train_examples", 10000, "Train codes (PCA, probes).", **define
    )
    flags.DEFINE_integer(
        "test_examples", 5000, "Test codes the probes score.", **define
    )
    flags.DEFINE_list(
        "codes", [], "Task codes to split (default: every one).", **define
    )


def components_for(codes, variance):
    """The fewest principal components holding `variance` of `codes`'
    variance, at most the dimension minus one."""
    shares = np.cumsum(decomposition.PCA().fit(codes).explained_variance_ratio_)
    count = int(np.searchsorted(shares, variance) + 1)
    return min(count, codes.shape[1] - 1)


def read_codes(run_dir, train_examples, test_examples, codes=()):
    """The run's task names, and the means of its task `codes` (all if
    empty) with the labels, on its train and on its test split."""
    with open(os.path.join(run_dir, demo.REPORT_FILE)) as f:
        config = demo.run_config(json.load(f))
    train_ds, test_ds = demo.dsprites_splits(config)
    teacher = keras.saving.load_model(os.path.join(run_dir, demo.TEACHER_FILE))
    factors = kfactor.load_factors(os.path.join(run_dir, "factors"))
    readers = saved_factor_readers(factors, teacher)
    tasks = [name for name in readers if name not in ("teacher", "common")]
    unknown = sorted(set(codes) - set(tasks))
    if unknown:
        raise ValueError(
            f"Expected codes among the run's task factors {tasks}. "
            f"Received: codes={unknown}."
        )
    functions = {task: readers[task] for task in codes or tasks}
    train = collect_outputs(functions, train_ds, train_examples)
    test = collect_outputs(functions, test_ds, test_examples)
    return tasks, train, test


def code_rows(task, tasks, train, test, variance):
    """One row per factor that `task`'s code should not hold."""
    (codes, labels), (test_codes, test_labels) = train, test
    code, test_code = codes[task], test_codes[task]
    count = components_for(code, variance)
    own = principal_subspace_probe(
        code, labels[task], test_code, test_labels[task], count
    )
    rows = []
    for factor in tasks:
        if (
            factor == task
            or (task, factor) in datasets.DSPRITES_INTRINSIC_LEAKAGE
        ):
            continue
        whole = linear_probe(
            code, labels[factor], test_code, test_labels[factor]
        )
        split = principal_subspace_probe(
            code, labels[factor], test_code, test_labels[factor], count
        )
        rows.append(
            {
                "code": task,
                "factor": factor,
                "components": count,
                "variance_share": split.variance_share,
                "own_task_top": own.top,
                "whole_above_chance": whole.accuracy - whole.chance,
                "top_above_chance": split.top - split.chance,
                "rest_above_chance": split.rest - split.chance,
            }
        )
    return rows


def markdown(rows):
    lines = [
        "| code | factor | top components (variance) | own task, top "
        "| leak above chance: whole / top / rest |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['code']} | {row['factor']} | {row['components']} "
            f"({row['variance_share']:.4f}) | {row['own_task_top']:.3f} | "
            f"{row['whole_above_chance']:.3f} / {row['top_above_chance']:.3f}"
            f" / {row['rest_above_chance']:.3f} |"
        )
    return "\n".join(lines)


def leakage_subspace(
    run_dir, variance, train_examples, test_examples, codes=()
):
    """Every row of the table (of the task `codes`, or of every task code);
    also written to the run's `OUTPUT_FILE`."""
    tasks, train, test = read_codes(
        run_dir, train_examples, test_examples, codes
    )
    rows = [
        row
        for task in codes or tasks
        for row in code_rows(task, tasks, train, test, variance)
    ]
    with open(os.path.join(run_dir, OUTPUT_FILE), "w") as f:
        json.dump({"variance": variance, "rows": rows}, f, indent=1)
    return rows


def run_with_flags(flag_values=flags.FLAGS):
    """`leakage_subspace` with the parsed flags' values."""
    names = ("run_dir", "variance", "train_examples", "test_examples", "codes")
    return leakage_subspace(**{name: flag_values[name].value for name in names})


def main(argv):
    del argv
    print(markdown(run_with_flags()))


if __name__ == "__main__":
    define_flags()
    app.run(main)
