"""Tunes the InfoMax-Bottleneck weights with keras-tuner on procedural dSprites.

Trains a narrow multi-task dSprites teacher, then runs a keras-tuner
`RandomSearch` over `kfactor.lab.tuning.FactorizationHyperModel`'s space
(beta, InfoMax weight and estimator, KD kind, weight and temperature),
maximising the mean validation accuracy of the factor networks (or a
disentanglement objective, `--objective=val_task_code_mig`). Writes `best.json`
in the tuner's project folder.

    python examples/tune_factorization.py --max_trials=10 --epochs=2

Any keras-tuner tuner works the same way (`BayesianOptimization`,
`Hyperband`): only the tuner line changes.
"""

import json
import os

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.lab.teacher import compile_teacher
from kfactor.lab.tuning import OBJECTIVES
from kfactor.lab.tuning import FactorizationHyperModel
from kfactor.zoo.simple_conv import NARROW_WIDTHS

import keras
import keras_tuner
from absl import app
from absl import flags


def define_flags(flag_values=flags.FLAGS):
    """Defines this script's flags on `flag_values`."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_integer("num_train", 4000, "Training images.", **define)
    flags.DEFINE_integer("num_test", 1000, "Validation images.", **define)
    flags.DEFINE_integer("batch_size", 128, "Images per batch.", **define)
    flags.DEFINE_integer("teacher_epochs", 3, "Teacher epochs.", **define)
    flags.DEFINE_integer("epochs", 2, "Factorization epochs a trial.", **define)
    flags.DEFINE_integer("max_trials", 10, "Trials of the search.", **define)
    flags.DEFINE_enum(
        "objective", OBJECTIVES[0], OBJECTIVES, "Tuning objective.", **define
    )
    flags.DEFINE_string(
        "directory", "kfactor_runs/tuning", "Tuner folder.", **define
    )
    flags.DEFINE_string("project_name", "imb", "Tuner project.", **define)
    flags.DEFINE_bool("overwrite", False, "Restart the search.", **define)
    flags.DEFINE_integer("seed", 0, "Seed of data, models, search.", **define)
    flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0, 1 or 2.", **define)


def datasets(num_train, num_test, batch_size, seed):
    """Disjoint procedural dSprites train/validation sets (cached)."""
    dsprites = kfactor.lab.datasets.ProceduralDSprites(seed=seed)
    train, test = dsprites.split(num_train, num_test)
    return (
        dsprites.dataset(train, batch_size=batch_size, cache=True),
        dsprites.dataset(test, batch_size=batch_size, cache=True),
    )


def run(
    num_train=4000,
    num_test=1000,
    batch_size=128,
    teacher_epochs=3,
    epochs=2,
    max_trials=10,
    objective=OBJECTIVES[0],
    directory="kfactor_runs/tuning",
    project_name="imb",
    overwrite=False,
    seed=0,
    verbose=1,
):
    """Trains a teacher, searches, returns the best trial's summary."""
    keras.utils.set_random_seed(seed)
    train_ds, test_ds = datasets(num_train, num_test, batch_size, seed)
    widths = NARROW_WIDTHS
    teacher = kfactor.zoo.multitask_teacher(
        kfactor.lab.datasets.DSPRITES_NUM_CLASSES,
        encoder=kfactor.zoo.simple_conv64(10, widths=widths),
    )
    compile_teacher(teacher)
    teacher.fit(train_ds, epochs=teacher_epochs, verbose=verbose)

    hypermodel = FactorizationHyperModel(
        teacher,
        common=lambda: kfactor.zoo.simple_conv64(
            10, widths=widths, name="common_encoder"
        ),
        tasks={
            task: (
                lambda task=task: kfactor.zoo.simple_conv64(
                    None, widths=widths, name=f"{task}_encoder"
                )
            )
            for task in teacher.output
        },
        objective=objective,
    )
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=hypermodel.objective,
        max_trials=max_trials,
        seed=seed,
        directory=directory,
        project_name=project_name,
        overwrite=overwrite,
    )
    tuner.search(
        train_ds, validation_data=test_ds, epochs=epochs, verbose=verbose
    )
    best = tuner.oracle.get_best_trials(1)[0]
    summary = {
        "objective": objective,
        "best_score": best.score,
        "best_hyperparameters": best.hyperparameters.values,
        "completed_trials": sum(
            trial.status == "COMPLETED"
            for trial in tuner.oracle.trials.values()
        ),
    }
    path = os.path.join(directory, project_name, "best.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    return summary


def run_with_flags(flag_values=flags.FLAGS):
    """`run` with the parsed flags' values."""
    names = (
        "num_train",
        "num_test",
        "batch_size",
        "teacher_epochs",
        "epochs",
        "max_trials",
        "objective",
        "directory",
        "project_name",
        "overwrite",
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
