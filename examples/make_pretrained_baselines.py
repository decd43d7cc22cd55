"""Trains the demo's pretrained baselines and ships them in kfactor.

`kfactor demo` compares the factor networks with a KD student of their total
size and with single-task networks, both trained from scratch with the
factorization's images, steps and code size. This script is the command that
made the shipped ones (`kfactor/lab/pretrained/`): it loads the pretrained
teacher, trains both baselines with the default `DemoConfig`
(`kfactor.lab.demo.baselines.train_baselines`, each from the run's seed, so
`kfactor demo --train_baselines` trains the same networks), scores them on
the demo's held-out split, and writes

    kfactor/lab/pretrained/dsprites_kd_student.keras
    kfactor/lab/pretrained/dsprites_single_task.keras
    kfactor/lab/pretrained/dsprites_baselines.json   # config + accuracies

    python examples/make_pretrained_baselines.py [--output_dir=DIR]

Both files are written next to the target first and then moved in, so an
interrupted run leaves the previous baselines whole.
"""

import argparse
import dataclasses
import json
import os
import shutil
import tempfile

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.lab import demo
from kfactor.lab.demo import baselines
from kfactor.lab.demo import results
from kfactor.lab.evaluation.predictions import evaluate_predictions


def uncompiled_copy(model):
    """`model` without its optimizer state (a `.keras` file keeps the
    optimizer of a compiled model, twice the weights again)."""
    if getattr(model, "optimizer", None) is None:
        return model
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default=demo.PRETRAINED_DIR)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()
    config = dataclasses.replace(
        demo.DemoConfig(), train_baselines=True, verbose=args.verbose
    )
    demo.check_config(config)
    teacher, _ = demo.get_teacher(config)
    train_ds, test_ds = demo.dsprites_splits(config)
    models, seconds = baselines.train_baselines(teacher, train_ds, config)
    accuracies, _ = evaluate_predictions(models, test_ds)
    info = {
        "config": baselines.baseline_config(config),
        "command": "python examples/make_pretrained_baselines.py",
        "test_accuracy": accuracies,
        "train_seconds": seconds,
        "machine": results.cpu_name(),
        "num_parameters": {
            name: int(model.count_params()) for name, model in models.items()
        },
    }
    targets = {name: baselines.BASELINES[name][1] for name in models} | {
        "info": baselines.PRETRAINED_BASELINES_INFO
    }
    os.makedirs(args.output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.output_dir) as staging:
        staged = {}
        for name, model in models.items():
            staged[name] = os.path.join(
                staging, os.path.basename(targets[name])
            )
            uncompiled_copy(model).save(staged[name])
        staged["info"] = os.path.join(staging, "baselines.json")
        with open(staged["info"], "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
        for name, path in staged.items():
            shutil.move(
                path,
                os.path.join(args.output_dir, os.path.basename(targets[name])),
            )
    print(json.dumps(info, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
