"""Factorizes a dSprites teacher with tf.distribute (one or many machines).

The model is built inside `strategy.scope()` and trained with the usual
`fit`; `--batch_size` is the global batch, split over the replicas. The
batch-level terms (InfoMax, the batch-moment bottleneck, the projection's
BatchNorm) see the global batch, so with deterministic task factors a step
equals the single-device step on the same global batch.

One machine, all its GPUs (or `--cpu_replicas=2` to try two CPU replicas):

    python examples/distributed_factorization.py --strategy=mirrored

Several machines: run the same command on every worker, each with its own
`TF_CONFIG` (same cluster, its own index; worker 0 is the chief and writes
`--save_dir`). `kfactor.training.distribute.distributed_fit` trains with `fit`
on one machine and with a plain `strategy.run` loop across workers:

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}' \
    python examples/distributed_factorization.py --strategy=multi_worker
"""

import json
import os
import tempfile

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.lab.teacher import compile_teacher
from kfactor.training.distribute import distributed_fit
from kfactor.training.distribute import is_chief
from kfactor.zoo.simple_conv import NARROW_WIDTHS

import keras
import tensorflow as tf
from absl import app
from absl import flags


def define_flags(flag_values=flags.FLAGS):
    """Defines this script's flags on `flag_values`."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_enum(
        "strategy",
        "mirrored",
        ["mirrored", "multi_worker", "default"],
        "tf.distribute strategy ('default': no distribution).",
        **define,
    )
    flags.DEFINE_integer(
        "cpu_replicas",
        0,
        "Split the CPU into this many logical devices (mirrored only).",
        **define,
    )
    flags.DEFINE_integer("num_train", 8000, "Training images.", **define)
    flags.DEFINE_integer("num_test", 2000, "Test images.", **define)
    flags.DEFINE_integer("batch_size", 128, "Global batch size.", **define)
    flags.DEFINE_integer("teacher_epochs", 3, "Teacher epochs.", **define)
    flags.DEFINE_integer("epochs", 3, "Factorization epochs.", **define)
    flags.DEFINE_bool(
        "variational",
        True,
        "Variational task factors (noise drawn per replica).",
        **define,
    )
    flags.DEFINE_string(
        "save_dir", None, "Where the chief saves factors.", **define
    )
    flags.DEFINE_integer("seed", 0, "Seed of data and models.", **define)
    flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0, 1 or 2.", **define)


def make_strategy(kind, cpu_replicas=0):
    """The strategy; call before any other TensorFlow op (multi-worker)."""
    if cpu_replicas:
        if kind != "mirrored":
            raise ValueError(
                "Expected --cpu_replicas only with --strategy=mirrored. "
                f"Received: strategy={kind!r}, cpu_replicas={cpu_replicas}."
            )
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0],
            [tf.config.LogicalDeviceConfiguration()] * cpu_replicas,
        )
        devices = [f"/cpu:{i}" for i in range(cpu_replicas)]
        return tf.distribute.MirroredStrategy(devices)
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        # Reads the cluster and this worker's index from TF_CONFIG.
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def datasets(num_train, num_test, batch_size, seed):
    """Procedural dSprites, sharded by example over the workers.

    Full batches only, so that every worker runs the same number of steps.
    """
    dsprites = kfactor.lab.datasets.ProceduralDSprites(seed=seed)
    train, test = dsprites.split(num_train, num_test)
    options = tf.data.Options()
    # In-memory data: shard examples, not files, over the workers.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return tuple(
        dsprites.dataset(
            indices,
            batch_size=batch_size,
            shuffle=shuffle,
            cache=True,
            drop_remainder=True,
        ).with_options(options)
        for indices, shuffle in ((train, True), (test, False))
    )


def run(
    strategy="mirrored",
    cpu_replicas=0,
    num_train=8000,
    num_test=2000,
    batch_size=128,
    teacher_epochs=3,
    epochs=3,
    variational=True,
    save_dir=None,
    seed=0,
    verbose=1,
):
    """Trains teacher and factors under the strategy; returns accuracies."""
    distribution = make_strategy(strategy, cpu_replicas)
    keras.utils.set_random_seed(seed)
    train_ds, test_ds = datasets(num_train, num_test, batch_size, seed)
    widths = NARROW_WIDTHS
    with distribution.scope():
        teacher = kfactor.zoo.multitask_teacher(
            kfactor.lab.datasets.DSPRITES_NUM_CLASSES,
            encoder=kfactor.zoo.simple_conv64(
                10, widths=widths, name="teacher_encoder"
            ),
        )
        compile_teacher(teacher)
    distributed_fit(teacher, train_ds, epochs=teacher_epochs, verbose=verbose)
    with distribution.scope():
        factorizer = kfactor.Factorizer(
            teacher,
            common=kfactor.zoo.simple_conv64(
                10, widths=widths, name="common_encoder"
            ),
            tasks={
                task: kfactor.TaskFactor(
                    kfactor.zoo.simple_conv64(
                        None, widths=widths, name=f"{task}_encoder"
                    ),
                    variational=variational,
                )
                for task in teacher.output
            },
        )
        factorizer.compile(optimizer=keras.optimizers.Adam(1e-3))
    # `fit` on one machine; a plain loop across workers (Keras 3's `fit`
    # fails there, see kfactor.training.distribute).
    history = distributed_fit(
        factorizer,
        train_ds,
        epochs=epochs,
        validation_data=test_ds,
        verbose=verbose,
    )
    result = {
        "replicas": distribution.num_replicas_in_sync,
        "chief": is_chief(distribution),
        "val_accuracy": {
            task: float(history.history[f"val_{task}_accuracy"][-1])
            for task in factorizer.task_names
        },
    }
    if save_dir:
        save(factorizer, save_dir, result)
    return result


def save(factorizer, save_dir, result):
    """Saves factors on the chief; the other workers save to a scratch dir.

    Every worker saves (as TensorFlow recommends for multi-worker saving),
    so that all of them finish together; only the chief's copy is kept.
    """
    if result["chief"]:
        factorizer.save_factors(save_dir, overwrite=True)
        with open(os.path.join(save_dir, "result.json"), "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
        return
    with tempfile.TemporaryDirectory() as scratch:
        factorizer.save_factors(os.path.join(scratch, "factors"))


def run_with_flags(flag_values=flags.FLAGS):
    """`run` with the parsed flags' values."""
    names = (
        "strategy",
        "cpu_replicas",
        "num_train",
        "num_test",
        "batch_size",
        "teacher_epochs",
        "epochs",
        "variational",
        "save_dir",
        "seed",
        "verbose",
    )
    return run(**{name: flag_values[name].value for name in names})


def main(argv):
    del argv
    print(json.dumps(run_with_flags(), sort_keys=True))


if __name__ == "__main__":
    define_flags()
    app.run(main)
