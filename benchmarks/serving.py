"""Latency of the exported SavedModel vs the in-process Keras model.

The 5-task model assembled from loaded factors is exported with
`kfactor.export_for_serving`, loaded back with `tf.saved_model.load`, and
its `serving_default` signature is called (logits and probabilities of
every task). In process, the same Keras model is called three ways:
`tf.function` (what serving runs), `predict_on_batch`, and eagerly
(`model(images)`). Every call is synchronous (its outputs are fetched as
NumPy, as a client would), so the rate is calls/s and 1/rate the latency.
"""

import atexit
import os
import shutil
import tempfile

import kfactor

import numpy as np
import tensorflow as tf

from benchmarks import models
from benchmarks.protocol import Item

BATCH_SIZES = (1, 32)


def _fetch(outputs):
    tf.nest.map_structure(np.asarray, outputs)


def call_loop(fn, images):
    """`run(calls)`: `calls` synchronous calls `fn(images)`."""

    def run(calls):
        for _ in range(calls):
            _fetch(fn(images))

    return run


def exported_signature(model):
    """`serving_default` of `model` exported and loaded back."""
    directory = tempfile.mkdtemp(prefix="kfactor-bench-export-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = os.path.join(directory, "1")
    summary = kfactor.export_for_serving(model, path)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]

    def call(images, _loaded=loaded):  # holds the loaded variables
        return signature(images=images)

    return call, summary


def export_items(width, batch_sizes=BATCH_SIZES):
    """`export/{width}/{variant}/{batch}` items, variant per call path."""
    _, factors = models.factorizer_and_factors(width)
    model = kfactor.assemble(factors)
    savedmodel, summary = exported_signature(model)
    compiled = tf.function(lambda x: model(x, training=False))
    variants = {
        "savedmodel": savedmodel,
        "keras_function": compiled,
        "keras_predict_on_batch": model.predict_on_batch,
        "keras_call": lambda x: model(x, training=False),
    }
    meta = {
        "tasks": list(model.output),
        "export_size_bytes": summary["size_bytes"],
        "parameters": summary["num_parameters"],
    }
    items = []
    for batch_size in batch_sizes:
        images = models.random_images(batch_size)
        for variant, fn in variants.items():
            name = f"export/{width}/{variant}/{batch_size}"
            run = call_loop(fn, images)
            item_meta = {**meta, "batch_size": batch_size}
            items.append(Item(name, run, 1, unit="calls", meta=item_meta))
    return items
