"""One factorization step on 1 device and on 2 mirrored CPUs; prints JSON.

Run in a fresh process (`python -m tests.distribute_check [estimator]`): the
logical CPU devices must be configured before TensorFlow initializes its
devices. All factorizers start from the same weights, with deterministic
task factors (variational ones draw their noise per replica), and see the
same global batch. The mirrored one steps with `fit`, a second mirrored one
with `kfactor.training.distribute.distributed_fit`'s multi-worker loop.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2,
)

import kfactor  # noqa: E402
from kfactor.training.distribute import distributed_fit  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests import fixtures  # noqa: E402

GLOBAL_BATCH = 16
# One task keeps the graphs (and their tracing, 2 replicas) small.
TASKS = {"row": 4}


def build(estimator):
    keras.utils.set_random_seed(0)
    teacher = fixtures.tiny_teacher(TASKS)
    factorizer = kfactor.Factorizer(
        teacher,
        common=fixtures.tiny_encoder(name="common_encoder"),
        tasks={
            task: kfactor.TaskFactor(
                fixtures.tiny_encoder(None, name=f"{task}_encoder"),
                variational=False,
            )
            for task in TASKS
        },
        infomax_estimator=estimator,
    )
    factorizer.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    return factorizer


def run(estimator):
    dataset = fixtures.blob_dataset(GLOBAL_BATCH, batch_size=GLOBAL_BATCH)
    single = build(estimator)
    initial = single.get_weights()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    models = {"single": single}
    for name in ("mirrored", "mirrored_loop"):
        with strategy.scope():
            models[name] = build(estimator)
            models[name].set_weights(initial)
    results = {"replicas": strategy.num_replicas_in_sync}
    for name, model in models.items():
        loop = name.endswith("_loop")
        history = distributed_fit(
            model,
            dataset,
            validation_data=dataset if loop else None,
            verbose=0,
            custom_loop=loop,
        )
        results[f"{name}_step"] = {k: v[0] for k, v in history.history.items()}
    for name in ("mirrored", "mirrored_loop"):
        results[f"{name}_max_weight_difference"] = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(single.get_weights(), models[name].get_weights())
        )
    results["max_weight_change"] = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(single.get_weights(), initial)
    )
    return results


if __name__ == "__main__":
    estimators = sys.argv[1:] or ["dv"]
    print(json.dumps({name: run(name) for name in estimators}))
