"""Compares InfoMax and cross-task objectives, factorizing from scratch.

Every variant factorizes the shipped dSprites teacher with every factor
encoder (common and task) starting at random, on the demo's splits, with
the factors in `--held_out` left out of the factorization (no label, head
or loss touches them). It reports what the objective moved into
`z_common` (linear probes on every factor against the teacher latent and a
random encoder: the held-out rows are the transfer claim), whether the
factor networks reach the teacher, and how much each task code leaks
(worst non-intrinsic cell above chance, linear and kNN probes, on the code
mean and on sampled codes).

    python examples/objective_comparison.py --variants=infonce,hint \
        --seeds=0,1,2 --factor_epochs=2 --out=docs/objective_comparison.json

Each run factorizes for `--factor_epochs` passes of 50,000 images and
scores on 10,000 / 5,000 held-out images; about 3 minutes a run on 2 Intel
AVX-512 cores at 2 epochs. `--seeds` are training seeds (initialization,
order, noise): the splits and teacher stay the demo's.
"""

import dataclasses
import json
import os
import tempfile
import time

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.lab.demo import results
from kfactor.lab.demo.config import DemoConfig
from kfactor.lab.demo.config import dsprites_splits
from kfactor.lab.demo.report import FACTORS
from kfactor.lab.demo.report import TEACHER
from kfactor.lab.demo.run import score_models
from kfactor.lab.demo.run import train_models
from kfactor.lab.demo.teacher import get_teacher

import keras
from absl import app
from absl import flags

#: The demo's teacher layers (and the common encoder's: same architecture)
#: that multi-stage pairing reads, bottom first; the last is the latent.
STAGES = ("conv4_relu", "conv5_relu", "latent")

#: Variant name -> `DemoConfig` fields. Weights left out (`None`) are the
#: `Factorizer`'s defaults; these variants set every one explicitly.
VARIANTS = {
    "infonce": dict(hint_weight=0.0, queue_weight=0.0, adversary_weight=0.0),
    "queue": dict(hint_weight=0.0, queue_weight=1.0, adversary_weight=0.0),
    "hint": dict(hint_weight=1.0, queue_weight=0.0, adversary_weight=0.0),
    "hint_stages": dict(
        hint_weight=1.0,
        queue_weight=0.0,
        adversary_weight=0.0,
        infomax_layers=STAGES,
    ),
    "queue_stages": dict(
        hint_weight=0.0,
        queue_weight=1.0,
        adversary_weight=0.0,
        infomax_layers=STAGES,
    ),
    "hint_adversary": dict(
        hint_weight=1.0, queue_weight=0.0, adversary_weight=1.0
    ),
    "hint_stages_adversary": dict(
        hint_weight=1.0,
        queue_weight=0.0,
        adversary_weight=1.0,
        infomax_layers=STAGES,
    ),
    "hint10": dict(hint_weight=10.0, queue_weight=0.0, adversary_weight=0.0),
    "hint10_stages": dict(
        hint_weight=10.0,
        queue_weight=0.0,
        adversary_weight=0.0,
        infomax_layers=STAGES,
    ),
    "hint10_confusion": dict(
        hint_weight=10.0, queue_weight=0.0, adversary_weight=3.0
    ),
    "hint10_class_means": dict(
        hint_weight=10.0,
        queue_weight=0.0,
        adversary_weight=10.0,
        adversary_mode="class_means",
    ),
    "queue_hint10": dict(
        hint_weight=10.0, queue_weight=1.0, adversary_weight=0.0
    ),
    "dv": dict(
        infomax_estimator="dv",
        hint_weight=0.0,
        queue_weight=0.0,
        adversary_weight=0.0,
    ),
    "jsd": dict(
        infomax_estimator="jsd",
        hint_weight=0.0,
        queue_weight=0.0,
        adversary_weight=0.0,
    ),
    "nwj": dict(
        infomax_estimator="nwj",
        hint_weight=0.0,
        queue_weight=0.0,
        adversary_weight=0.0,
    ),
    "defaults": dict(),
}

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", ["infonce", "hint"], "Variants to run.")
flags.DEFINE_list("seeds", ["0"], "Training seeds.")
flags.DEFINE_integer("factor_epochs", 2, "Factorization passes.")
flags.DEFINE_list("held_out", ["scale", "pos_x"], "Factors left out.")
flags.DEFINE_string("out", "objective_comparison.json", "JSON to write.")


def summarize(report, seconds):
    """The numbers a comparison row needs from a demo report."""
    disentanglement = report["disentanglement"]
    leakage = {
        key: disentanglement[key]["max_nonintrinsic_above_chance"]
        for key in (
            "leakage",
            "leakage_knn",
            "leakage_sampled",
            "leakage_knn_sampled",
        )
        if key in disentanglement
    }
    common = report["common_factor"]
    return {
        "factor_accuracy": {
            t: v["factor_accuracy"] for t, v in report["tasks"].items()
        },
        "teacher_accuracy": {
            t: v["teacher_accuracy"] for t, v in report["tasks"].items()
        },
        "transfer": report["transfer"]["factors"],
        "common_cosine": common["mean_pairwise_cosine"],
        "common_participation_ratio": common["participation_ratio"],
        "mean_replacement_drop": common["mean_replacement_drop"],
        "max_leakage_above_chance": leakage,
        "factorization_seconds": seconds,
    }


def run_variant(variant, seed, factor_epochs, held_out):
    config = DemoConfig(
        factor_epochs=factor_epochs,
        single_task_epochs=0,
        kd_epochs=0,
        held_out=tuple(held_out),
        training_seed=seed,
        verbose=0,
        output_dir=tempfile.mkdtemp(prefix=f"kf-{variant}-{seed}-"),
        **VARIANTS[variant],
    )
    keras.utils.set_random_seed(config.run_seed)
    train_ds, test_ds = dsprites_splits(config)
    teacher, _ = get_teacher(config)
    start = time.perf_counter()
    models, _, _ = train_models(teacher, train_ds, test_ds, config)
    seconds = time.perf_counter() - start
    report, _ = score_models(
        {TEACHER: teacher, FACTORS: models[FACTORS]}, test_ds, config
    )
    summary = summarize(report, seconds)
    summary["final_logs"] = {
        key: float(values[-1])
        for key, values in models[FACTORS].history.history.items()
    }
    summary["cpu"] = results.cpu_name()
    recorded = dataclasses.asdict(config)
    # No machine paths in docs/: the run's folder by name only.
    recorded["output_dir"] = os.path.join(
        "kfactor_runs", os.path.basename(config.output_dir)
    )
    return summary, recorded


def variant_label(variant, factor_epochs):
    """The table's row name: the variant, and its budget when it is not
    the demo's (rows of different budgets are not one comparison)."""
    if factor_epochs == DemoConfig.factor_epochs:
        return variant
    return f"{variant} ({factor_epochs} epochs)"


def main(argv):
    del argv
    results = []
    if os.path.exists(FLAGS.out):
        with open(FLAGS.out) as f:
            results = json.load(f)["runs"]
    for variant in FLAGS.variants:
        for seed in map(int, FLAGS.seeds):
            summary, config = run_variant(
                variant, seed, FLAGS.factor_epochs, FLAGS.held_out
            )
            results.append(
                {
                    "variant": variant_label(variant, FLAGS.factor_epochs),
                    "seed": seed,
                    "config": config,
                    **summary,
                }
            )
            print(json.dumps(results[-1]["transfer"]), flush=True)
            with open(FLAGS.out, "w") as f:
                json.dump({"runs": results}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    app.run(main)
