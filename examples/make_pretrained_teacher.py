"""Trains the demo's pretrained dSprites teacher and ships it in kfactor.

`kfactor demo` starts from this teacher (`kfactor/lab/pretrained/`), as
knowledge factorization starts from a pretrained network. This script is
the command that made it: it trains `kfactor.lab.demo.train_teacher` with the
default `DemoConfig` (its `teacher_*` fields; about 10 minutes on 2
AVX512 cores), scores it on the demo's held-out split, and writes

    kfactor/lab/pretrained/dsprites_teacher.keras
    kfactor/lab/pretrained/dsprites_teacher.json   # config + accuracies

    python examples/make_pretrained_teacher.py [--teacher_epochs=N]

`kfactor demo --train_teacher` retrains the same teacher inside the demo
instead of loading it.
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
from kfactor.lab.evaluation.predictions import evaluate_predictions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = demo.DemoConfig()
    parser.add_argument(
        "--teacher_epochs", type=int, default=defaults.teacher_epochs
    )
    parser.add_argument("--output_dir", default=demo.PRETRAINED_DIR)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()
    config = dataclasses.replace(
        defaults,
        teacher_epochs=args.teacher_epochs,
        train_teacher=True,
        verbose=args.verbose,
    )
    teacher, seconds, rate = demo.train_teacher(config)
    accuracies, orientation = evaluate_predictions(
        {"teacher": teacher}, demo.dsprites_splits(config)[1]
    )
    info = {
        "config": demo.teacher_config(config),
        "command": "python examples/make_pretrained_teacher.py"
        + (
            f" --teacher_epochs={args.teacher_epochs}"
            if args.teacher_epochs != defaults.teacher_epochs
            else ""
        ),
        "test_accuracy": accuracies["teacher"],
        "orientation_symmetry_aware_accuracy": orientation["teacher"][
            "symmetry_aware"
        ],
        "train_seconds": seconds,
        "train_images_per_second": rate,
        "num_parameters": int(teacher.count_params()),
    }
    os.makedirs(args.output_dir, exist_ok=True)
    # Write both files next to the target first, then move them in, so an
    # interrupted run leaves the previous teacher whole.
    with tempfile.TemporaryDirectory(dir=args.output_dir) as staging:
        model_path = os.path.join(staging, "teacher.keras")
        teacher.save(model_path)
        info_path = os.path.join(staging, "teacher.json")
        with open(info_path, "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
        shutil.move(
            model_path,
            os.path.join(
                args.output_dir, os.path.basename(demo.PRETRAINED_TEACHER)
            ),
        )
        shutil.move(
            info_path,
            os.path.join(
                args.output_dir, os.path.basename(demo.PRETRAINED_TEACHER_INFO)
            ),
        )
    print(json.dumps(info, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
