"""Factorizes a single-task image classifier (the paper's CIFAR setting).

A stock Keras classifier (kfactor's CIFAR-size Wide ResNet, any
`keras.applications` model, or your own `.keras` file) is the teacher of one
task, `label`; the common factor and the task factor are headless
`keras.applications` (or WRN) encoders; InfoMax pairs the last three stages
of teacher and common factor, each through its own projection, as the
reference CIFAR-10 configs (WRN-28-2 -> WRN-28-2 + MobileNetV2 x0.5,
soft-target KD with T = 10).

The data are local; nothing is downloaded:

    # CIFAR-10 prepared by TFDS in a local data_dir:
    python examples/factorize_classifier.py --data_dir=/data/tfds
    # or a folder with one sub-folder of images per class:
    python examples/factorize_classifier.py --image_folder=/data/flowers \
        --image_size=64 --teacher=MobileNetV2 --common=MobileNetV2

`--teacher=path/to/classifier.keras` factorizes a classifier you trained
(a softmax output is handled: see `kfactor.zoo.applications.as_task_teacher`).
"""

import json
import os
import re

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.data.folders import load_image_folder
from kfactor.zoo.applications import applications_encoder
from kfactor.zoo.applications import as_task_teacher
from kfactor.zoo.applications import stage_layer_names
from kfactor.zoo.wrn import wide_resnet

import keras
from absl import app
from absl import flags

TASK = "label"
WRN_SPEC = re.compile(r"^wrn-(\d+)-(\d+)$")


def define_flags(flag_values=flags.FLAGS):
    """Defines this script's flags on `flag_values`."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string(
        "data_dir", None, "TFDS data_dir with cifar10 prepared.", **define
    )
    flags.DEFINE_string(
        "image_folder", None, "Folder of class sub-folders.", **define
    )
    flags.DEFINE_float(
        "validation_split", 0.2, "Held-out share of --image_folder.", **define
    )
    flags.DEFINE_integer(
        "image_size", 32, "Image side for --image_folder.", **define
    )
    flags.DEFINE_string(
        "teacher",
        "wrn-28-2",
        "'wrn-D-K', a keras.applications name, or a .keras file.",
        **define,
    )
    flags.DEFINE_string("common", "wrn-28-2", "Common encoder.", **define)
    flags.DEFINE_string("task", "MobileNetV2", "Task encoder.", **define)
    flags.DEFINE_float("alpha", 0.5, "Width of MobileNet encoders.", **define)
    flags.DEFINE_integer(
        "infomax_levels", 3, "Stages InfoMax pairs (0: auto).", **define
    )
    flags.DEFINE_integer("batch_size", 128, "Images per batch.", **define)
    flags.DEFINE_integer(
        "teacher_epochs", 10, "Epochs to train a new teacher.", **define
    )
    flags.DEFINE_integer("epochs", 10, "Factorization epochs.", **define)
    flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.", **define)
    flags.DEFINE_string("save_dir", None, "Where to save factors.", **define)
    flags.DEFINE_integer("seed", 0, "Seed of data and models.", **define)
    flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0, 1 or 2.", **define)


def load_data(data_dir, image_folder, image_size, validation_split, batch):
    """`(train, test, num_classes, image_shape)` from TFDS or a folder."""
    if bool(data_dir) == bool(image_folder):
        raise ValueError(
            "Expected exactly one of --data_dir (a TFDS data_dir where "
            "cifar10 is prepared) and --image_folder (one sub-folder of "
            f"images per class). Received: data_dir={data_dir!r}, "
            f"image_folder={image_folder!r}. kfactor never downloads data. "
            "Fix: prepare CIFAR-10 with tfds on a machine with internet and "
            "copy its data_dir here, or point --image_folder at your images."
        )
    if data_dir:
        num_classes = kfactor.lab.datasets.CIFAR10_NUM_CLASSES[TASK]
        train = kfactor.lab.datasets.load_tfds(
            "cifar10", data_dir, "train", batch
        )
        test = kfactor.lab.datasets.load_tfds(
            "cifar10", data_dir, "test", batch, shuffle=False
        )
        return train, test, num_classes, (32, 32, 3)
    size = (image_size, image_size)
    split = dict(validation_split=validation_split, image_size=size)
    train, names = load_image_folder(
        image_folder, TASK, batch_size=batch, subset="training", **split
    )
    test, _ = load_image_folder(
        image_folder, TASK, batch_size=batch, subset="validation", **split
    )
    return train, test, len(names), (image_size, image_size, 3)


def _mobilenet_options(name, alpha):
    return {"alpha": alpha} if name.startswith("MobileNet") else {}


def build_classifier(spec, image_shape, num_classes, alpha):
    """A softmax classifier: a WRN, a `keras.applications` model or a file."""
    if spec.endswith(".keras") or spec.endswith(".h5"):
        return keras.saving.load_model(spec), False
    wrn = WRN_SPEC.match(spec)
    if wrn:
        depth, width = map(int, wrn.groups())
        model = wide_resnet(
            depth,
            width,
            input_shape=image_shape,
            classes=num_classes,
            classifier_activation="softmax",
        )
    else:
        model = getattr(keras.applications, spec)(
            weights=None,
            input_shape=image_shape,
            classes=num_classes,
            **_mobilenet_options(spec, alpha),
        )
    return model, True


def build_encoder(spec, image_shape, alpha, name):
    """A headless encoder: `wrn-D-K` or a `keras.applications` name."""
    wrn = WRN_SPEC.match(spec)
    if wrn:
        depth, width = map(int, wrn.groups())
        return applications_encoder(
            wide_resnet, image_shape, depth=depth, width=width, name=name
        )
    return applications_encoder(
        spec, image_shape, name=name, **_mobilenet_options(spec, alpha)
    )


def run(
    data_dir=None,
    image_folder=None,
    validation_split=0.2,
    image_size=32,
    teacher="wrn-28-2",
    common="wrn-28-2",
    task="MobileNetV2",
    alpha=0.5,
    infomax_levels=3,
    batch_size=128,
    teacher_epochs=10,
    epochs=10,
    learning_rate=1e-3,
    save_dir=None,
    seed=0,
    verbose=1,
):
    """Trains (or loads) the classifier, factorizes it, returns accuracies."""
    keras.utils.set_random_seed(seed)
    train, test, num_classes, image_shape = load_data(
        data_dir, image_folder, image_size, validation_split, batch_size
    )
    classifier, new = build_classifier(teacher, image_shape, num_classes, alpha)
    as_single_label = lambda x, y: (x, y[TASK])  # noqa: E731
    classifier.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if new:
        classifier.fit(
            train.map(as_single_label), epochs=teacher_epochs, verbose=verbose
        )
    teacher_accuracy = classifier.evaluate(
        test.map(as_single_label), verbose=0, return_dict=True
    )["accuracy"]

    teacher_model = as_task_teacher(classifier, task=TASK)
    common_encoder = build_encoder(common, image_shape, alpha, "common")
    if infomax_levels:
        features = dict(
            teacher_features=stage_layer_names(teacher_model, infomax_levels),
            common_features=stage_layer_names(common_encoder, infomax_levels),
        )
    else:
        features = {}
    factorizer = kfactor.Factorizer(
        teacher_model,
        common=common_encoder,
        tasks={TASK: build_encoder(task, image_shape, alpha, "task")},
        kd="soft_target",
        kd_temperature=10.0,
        **features,
    )
    factorizer.compile(optimizer=kfactor.FusedAdam(learning_rate))
    history = factorizer.fit(
        train, validation_data=test, epochs=epochs, verbose=verbose
    )
    result = {
        "teacher_accuracy": float(teacher_accuracy),
        "factor_accuracy": float(history.history[f"val_{TASK}_accuracy"][-1]),
        "teacher_features": features.get("teacher_features", "auto"),
        "common_features": features.get("common_features"),
        "num_classes": num_classes,
    }
    if save_dir:
        factorizer.save_factors(save_dir, overwrite=True)
        with open(os.path.join(save_dir, "result.json"), "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
    return result


def run_with_flags(flag_values=flags.FLAGS):
    """`run` with the parsed flags' values."""
    names = (
        "data_dir",
        "image_folder",
        "validation_split",
        "image_size",
        "teacher",
        "common",
        "task",
        "alpha",
        "infomax_levels",
        "batch_size",
        "teacher_epochs",
        "epochs",
        "learning_rate",
        "save_dir",
        "seed",
        "verbose",
    )
    return run(**{name: flag_values[name].value for name in names})


def main(argv):
    del argv
    print(json.dumps(run_with_flags(), indent=2, sort_keys=True))


if __name__ == "__main__":
    define_flags()
    app.run(main)
