"""Trains the small dSprites factors shipped in `saved_factors/` and the plugin.

Reproduces `saved_factors/dsprites/` (common + 5 tasks) and the plugin
package's subset (common, shape, scale) from nothing, with kfactor's public
API: procedural dSprites -> narrow multi-task teacher -> factorization ->
`save_factors`. Seeded, with TF op determinism; about 5 minutes on 2 CPU
cores.

    python examples/make_shipped_factors.py --overwrite

Then `kfactor list`, `kfactor assemble` and `kfactor export` work on a fresh
clone with nothing trained.
"""

import argparse
import json
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

import kfactor
from kfactor import artifacts
from kfactor.assembly import check_assembly
from kfactor.evaluation import collect_predictions
from kfactor.evaluation import task_accuracies

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PLUGIN_FACTORS = os.path.join(
    ROOT,
    "plugins",
    "kfactor-dsprites-factors",
    "kfactor_dsprites_factors",
    "factors",
)
PLUGIN_SUBSET = ("common", "shape", "scale")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", default=os.path.join(ROOT, "saved_factors", "dsprites")
    )
    parser.add_argument("--plugin_out", default=PLUGIN_FACTORS)
    parser.add_argument("--num_train", type=int, default=8000)
    parser.add_argument("--num_test", type=int, default=2000)
    parser.add_argument("--teacher_epochs", type=int, default=3)
    parser.add_argument("--factor_epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args()


def datasets(args):
    dsprites = kfactor.data.ProceduralDSprites(seed=args.seed)
    train, test = dsprites.split(args.num_train, args.num_test)
    train_ds = kfactor.data.dsprites_dataset(
        train, batch_size=128, shuffle=True, seed=args.seed, cache=True
    )
    test_ds = kfactor.data.dsprites_dataset(
        test, batch_size=256, shuffle=False, cache=True
    )
    return train_ds, test_ds


def encoder(latent_dim, name):
    return kfactor.simple_conv64(
        latent_dim, widths=kfactor.NARROW_WIDTHS, name=name
    )


def train(args, train_ds):
    teacher = kfactor.multitask_teacher(
        kfactor.data.DSPRITES_NUM_CLASSES,
        encoder=encoder(10, "teacher_encoder"),
    )
    teacher.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={
            t: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            for t in kfactor.data.DSPRITES_TASKS
        },
    )
    teacher.fit(train_ds, epochs=args.teacher_epochs, verbose=2)
    factorizer = kfactor.Factorizer(
        teacher,
        common=encoder(10, "common_encoder"),
        tasks={
            t: encoder(None, f"{t}_encoder")
            for t in kfactor.data.DSPRITES_TASKS
        },
    )
    factorizer.compile(optimizer=keras.optimizers.Adam(1e-3))
    factorizer.fit(train_ds, epochs=args.factor_epochs, verbose=2)
    return teacher, factorizer


def main():
    args = parse_args()
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    start = time.perf_counter()
    train_ds, test_ds = datasets(args)
    teacher, factorizer = train(args, train_ds)
    logits, labels = collect_predictions(
        {"teacher": teacher, "factors": factorizer}, test_ds
    )
    accuracy = task_accuracies(logits["factors"], labels)
    factorizer.save_factors(
        args.out, overwrite=args.overwrite, test_accuracy=accuracy
    )
    factors = kfactor.load_factors(args.out)
    images = next(iter(test_ds))[0][:64]
    model = kfactor.assemble(factors)
    differences = check_assembly(model, factors, images)
    for task, values in model(images).items():
        standalone = factorizer.factor_network(task)(images)
        differences[task] = max(
            differences[task], float(np.max(np.abs(values - standalone)))
        )
    with artifacts.atomic_directory(args.plugin_out, args.overwrite) as tmp:
        for name in PLUGIN_SUBSET:
            shutil.copytree(os.path.join(args.out, name), f"{tmp}/{name}")
    summary = {
        "factor_accuracy": accuracy,
        "teacher_accuracy": task_accuracies(logits["teacher"], labels),
        "assembled_max_abs_diff": differences,
        "seconds": time.perf_counter() - start,
    }
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
