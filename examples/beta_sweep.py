"""Sweeps the bottleneck weight beta: what each setting does to the codes.

For each beta, the demo's factorization (pretrained teacher, Gaussian task
codes starting at sigma = 0.05) is trained for `--epochs` passes, and the
script records what the bottleneck is supposed to change:

- each task code's size in nats (`<task>_kl`, the KL that beta weighs);
- the factor networks' accuracy;
- how much they use the common code (accuracy drop when `z_common` is
  replaced by its mean);
- the task codes' leakage: linear-probe accuracy above chance on the
  *other* factors, averaged over the 20 off-diagonal cells, next to the
  same probe on independently trained single-task networks of the same
  architecture and code size trained as long (the "knows only its task"
  reference).

    python examples/beta_sweep.py --epochs=2 --betas=0,0.001,0.01,0.03,0.1

writes `docs/BETA_SWEEP.md` (a table) and `beta_sweep.json` beside it.
"""

import argparse
import dataclasses
import json
import os
import time

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.lab import datasets as data_lib
from kfactor.lab import demo
from kfactor.lab.evaluation.predictions import evaluate_accuracies
from kfactor.lab.evaluation.report import leakage_section

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.join(os.path.dirname(HERE), "docs")


def mean_offdiag_above_chance(leakage):
    matrix = np.asarray(leakage["matrix"])
    chance = np.asarray(leakage["chance"])[np.newaxis, :]
    off = np.array(
        [
            [b != f for f in leakage["factor_names"]]
            for b in leakage["block_names"]
        ]
    )
    return float(np.mean((matrix - chance)[off]))


def run_beta(teacher, config, beta):
    keras.utils.set_random_seed(config.seed)
    train_ds, test_ds = demo.dsprites_splits(config)
    factorizer = demo.build_factorizer(teacher, config, beta=beta)
    factorizer.compile(
        optimizer=demo.optimizer_for(config, config.factor_epochs)
    )
    start = time.perf_counter()
    history = factorizer.fit(
        train_ds,
        epochs=config.factor_epochs,
        steps_per_epoch=demo.steps_per_epoch(config),
        verbose=config.verbose,
        shuffle=False,
    ).history
    seconds = time.perf_counter() - start
    accuracies = evaluate_accuracies(
        {"teacher": teacher, "factor": factorizer}, test_ds
    )
    disentanglement, common, _ = demo.evaluate_factorization(
        factorizer,
        accuracies["teacher"],
        demo.dsprites_splits(config)[0],
        test_ds,
        config,
    )
    return {
        "beta": beta,
        "seconds": seconds,
        "accuracy": accuracies["factor"],
        "teacher_accuracy": accuracies["teacher"],
        "task_kl_nats": {
            t: float(history[f"{t}_kl"][-1]) for t in factorizer.task_names
        },
        "mean_replacement_drop": common["mean_replacement_drop"],
        "common_cosine": common["mean_pairwise_cosine"],
        "common_participation_ratio": common["participation_ratio"],
        "leakage_mean_offdiag_above_chance": disentanglement["leakage"][
            "mean_offdiag_above_chance"
        ],
        "leakage_max_offdiag_above_chance": disentanglement["leakage"][
            "max_offdiag_above_chance"
        ],
    }


def run_single_task(teacher, config):
    keras.utils.set_random_seed(config.seed)
    train_ds, test_ds = demo.dsprites_splits(config)
    networks, seconds = demo.train_single_task_networks(
        teacher, train_ds, config
    )
    accuracies = evaluate_accuracies({"single": networks}, test_ds)
    readers = {t: demo.code_reader(networks, t) for t in networks.task_names}
    (train, train_f), (test, test_f) = demo.collect_split_codes(
        readers, demo.dsprites_splits(config)[0], test_ds, config
    )
    leakage = leakage_section(
        train, train_f, test, test_f, data_lib.DSPRITES_TASKS
    )
    return {
        "seconds": seconds,
        "accuracy": accuracies["single"],
        "leakage_mean_offdiag_above_chance": leakage[
            "mean_offdiag_above_chance"
        ],
        "leakage_max_offdiag_above_chance": leakage["max_offdiag_above_chance"],
    }


def markdown(rows, single, config, command):
    tasks = list(single["accuracy"])
    lines = [
        "# Bottleneck sweep: what beta does",
        "",
        f"`{command}`: the demo's factorization (pretrained teacher, "
        f"{config.num_train} images, {config.factor_epochs} epochs of batch "
        f"{config.batch_size}, Gaussian task codes from sigma = 0.05), one "
        f"run per beta, seed 0, probes on {config.eval_train_examples} train "
        f"and {config.eval_test_examples} test codes. Leakage: linear-probe "
        "accuracy above chance from each task code to the other four "
        "factors (mean and max over "
        "the 20 off-diagonal cells; some cells are intrinsic to dSprites, "
        "e.g. orientation -> shape).",
        "",
        "| beta | KL per task code, nats (" + ", ".join(tasks) + ") | "
        "accuracy (" + ", ".join(tasks) + ") | drop when z_common -> mean | "
        "leakage mean / max |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        kl = ", ".join(f"{row['task_kl_nats'][t]:.1f}" for t in tasks)
        acc = ", ".join(f"{row['accuracy'][t]:.3f}" for t in tasks)
        lines.append(
            f"| {row['beta']:g} | {kl} | {acc} | "
            f"{100 * row['mean_replacement_drop']:.1f} pts | "
            f"{row['leakage_mean_offdiag_above_chance']:.3f} / "
            f"{row['leakage_max_offdiag_above_chance']:.3f} |"
        )
    acc = ", ".join(f"{single['accuracy'][t]:.3f}" for t in tasks)
    lines.append(
        f"| single-task networks | - | {acc} | - | "
        f"{single['leakage_mean_offdiag_above_chance']:.3f} / "
        f"{single['leakage_max_offdiag_above_chance']:.3f} |"
    )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--betas", default="0,0.001,0.01,0.03,0.1")
    parser.add_argument("--output_dir", default=DOCS)
    parser.add_argument("--eval_examples", type=int, default=5000)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()
    config = dataclasses.replace(
        demo.DemoConfig(),
        factor_epochs=args.epochs,
        single_task_epochs=args.epochs,
        eval_train_examples=args.eval_examples,
        eval_test_examples=args.eval_examples,
        verbose=args.verbose,
    )
    teacher, _ = demo.get_teacher(config)
    command = (
        f"python examples/beta_sweep.py --epochs={args.epochs} "
        f"--betas={args.betas}"
    )
    os.makedirs(args.output_dir, exist_ok=True)
    results = {"command": command, "rows": [], "single_task": None}

    def save():  # after every run, so a crash keeps what was measured
        with open(os.path.join(args.output_dir, "beta_sweep.json"), "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)

    single = results["single_task"] = run_single_task(teacher, config)
    save()
    for beta in args.betas.split(","):
        results["rows"].append(run_beta(teacher, config, float(beta)))
        save()
    rows = results["rows"]
    table = markdown(rows, single, config, command)
    with open(os.path.join(args.output_dir, "BETA_SWEEP.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
