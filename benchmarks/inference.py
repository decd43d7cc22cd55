"""Assembled inference: vs standalone factor networks, exported, PyTorch.

Workloads (`WORKLOADS`): `demo`, the demo's narrow SimpleConv64 factors of
five dSprites tasks, and `realistic`, `realistic.py`'s ResNet-18-CIFAR
common factor and three MobileNetV2-CIFAR x0.5 task factors, both untrained
and in memory (`kfactor.assemble(factorizer)`, batch normalization folded
into the convolutions as `assemble` and `save_factors` do by default). For
each, at batch 1 (latency) and 128 (throughput), every call synchronous
(its outputs fetched as NumPy, as a client would):

- `infer/{workload}/assembled/{batch}`: the assembled model
  `images -> {task: logits}` as one `tf.function` (the common factor once);
- `infer/{workload}/unfolded/{batch}`: the same with
  `fold_batch_norm=False` (Keras's batch normalization in inference), for
  what folding gains;
- `infer/{workload}/standalone/{batch}`: the N factor networks (each a
  one-task assembly, folded), each its own `tf.function` (N deployments,
  each recomputing the common factor);
- `infer/{workload}/savedmodel/{batch}`: the assembled model exported with
  `kfactor.export_for_serving` and called through `tf.saved_model.load`'s
  `serving_default` (which also returns each task's probabilities);
- `infer/{workload}/common/{batch}`: the common factor alone (folded),
  for the speed-up that assembling can reach in time
  (`realistic_report`).

Each call's seconds are recorded (`Item.call_seconds`) for p50/p99. The
FLOP-ideal speed-up of assembling, `N (C + T) / (C + N T)`, is in the
items' meta. It assumes every FLOP costs the same time; when the common
factor's dense convolutions run at a higher FLOP rate than the task
factors' depthwise ones, the reachable speed-up is the same formula in
measured seconds, `S / (S - (N - 1) C)` with `S` the N standalone
networks' time and `C` the common factor's.
"""

import atexit
import os
import shutil
import tempfile
import time

import kfactor
from kfactor.factors import saving

import numpy as np
import tensorflow as tf

from benchmarks import flops
from benchmarks import models
from benchmarks import realistic
from benchmarks.protocol import Item

WORKLOADS = ("demo", "realistic")
BATCH_SIZES = (1, 128)


def build_workload(workload, size="full"):
    """`(factorizer, image_shape)` of a workload (untrained)."""
    if workload == "demo":
        factorizer = models.build_factorizer("narrow")
    elif workload == "realistic":
        factorizer = realistic.build_factorizer(size)
    else:
        raise ValueError(
            f"Expected a workload in {WORKLOADS}. Received: {workload!r}"
        )
    return factorizer, factorizer.image_shape


def random_images(batch_size, shape, seed=0):
    """A batch of uniform [0, 1] images (binary for the 1-channel demo)."""
    rng = np.random.default_rng(seed)
    images = rng.random((batch_size, *shape), "float32")
    if shape[-1] == 1:
        images = np.round(images)
    return tf.constant(images)


def timed_calls(fns, images, call_seconds):
    """`run(calls)`: synchronous calls of every fn of `fns`, each timed."""

    def run(calls):
        for _ in range(calls):
            start = time.perf_counter()
            for fn in fns:
                tf.nest.map_structure(np.asarray, fn(images))
            call_seconds.append(time.perf_counter() - start)

    return run


def exported(model):
    """`serving_default` of `model` exported and loaded back."""
    directory = tempfile.mkdtemp(prefix="kfactor-bench-export-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = os.path.join(directory, "1")
    kfactor.export_for_serving(model, path)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]

    def call(images, _loaded=loaded):  # holds the loaded variables
        return signature(images=images)

    return call


def inference_function(model):
    """`model(x, training=False)` as a `tf.function`."""
    return tf.function(lambda x: model(x, training=False))


def workload_macs(factorizer, assembled, networks):
    shape = factorizer.image_shape
    macs = {
        "assembled": flops.forward_macs(assembled, shape),
        "standalone": sum(flops.forward_macs(n, shape) for n in networks),
        "common": flops.forward_macs(factorizer.common, shape),
    }
    macs["flop_ideal_speedup"] = macs["standalone"] / macs["assembled"]
    return macs


def inference_items(workload, batch_sizes=BATCH_SIZES, size="full"):
    """The `infer/{workload}/...` items at each batch size."""
    factorizer, shape = build_workload(workload, size)
    tasks = list(factorizer.task_names)
    assembled = kfactor.assemble(factorizer, verify=False)
    unfolded = kfactor.assemble(factorizer, verify=False, fold_batch_norm=False)
    networks = [
        kfactor.assemble(factorizer, tasks=[t], verify=False) for t in tasks
    ]
    common = saving.inference_common(factorizer.common, shape)
    macs = workload_macs(
        factorizer, unfolded, [factorizer.factor_network(t) for t in tasks]
    )
    fns = {
        "assembled": [inference_function(assembled)],
        "unfolded": [inference_function(unfolded)],
        "standalone": [inference_function(n) for n in networks],
        "savedmodel": [exported(assembled)],
        "common": [inference_function(common)],
    }
    items = []
    for batch_size in batch_sizes:
        images = random_images(batch_size, shape)
        for arrangement, functions in fns.items():
            seconds = []
            meta = {
                "tasks": tasks,
                "batch_size": batch_size,
                "forward_macs_per_image": macs,
                "flop_ideal_speedup": macs["flop_ideal_speedup"],
            }
            items.append(
                Item(
                    f"infer/{workload}/{arrangement}/{batch_size}",
                    timed_calls(functions, images, seconds),
                    batch_size,
                    meta=meta,
                    call_seconds=seconds,
                )
            )
    return items
