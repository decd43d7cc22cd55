"""Exporting an assembled model as a TF Serving SavedModel.

The SavedModel has one input, `images` (`float32[batch, H, W, C]`), and:

- `serving_default`: `{<task>_logits, <task>_probabilities}` for every task;
- one signature per task, named like the task: `{logits, probabilities}`;
- `serving_uint8`: `serving_default` on `uint8[batch, H, W, C]` 8-bit pixels,
  rescaled from [0, 255] to the factors' value range first.

The float signatures take float32 only: TensorFlow refuses uint8 there with
its own "expected a float tensor" before any kfactor code runs, so 8-bit
clients call `serving_uint8` (or send `pixels / 255` as float32).

It needs only TensorFlow to load (`tf.saved_model.load`), runs under
`saved_model_cli` and TF Serving, and holds only the inference computation:
the teacher, the auxiliary heads and the InfoMax projections are not in it.
"""

import logging
import os

from kfactor.factors import checks
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.assembly import assemble
from kfactor.factors.networks import FactorNetworks
from kfactor.factors.saved_factor import restored_variables
from kfactor.factors.saving import atomic_directory
from kfactor.factors.saving import directory_size

import keras
import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

SERVING_DEFAULT = "serving_default"
SERVING_UINT8 = "serving_uint8"
INPUT_NAME = "images"
#: Names a task's signature cannot take (ExportArchive attributes).
RESERVED_NAMES = (
    SERVING_DEFAULT,
    SERVING_UINT8,
    "signatures",
    "variables",
    "trainable_variables",
    "non_trainable_variables",
)


def _as_model(model_or_factors, tasks):
    if isinstance(model_or_factors, FactorNetworks) or not isinstance(
        model_or_factors, keras.Model
    ):
        return assemble(model_or_factors, tasks=tasks)
    model = model_or_factors
    if not isinstance(getattr(model, "output", None), dict):
        raise ValueError(
            "Expected an assembled model images -> {task: logits} "
            f"(kfactor.assemble). Received: {model.name!r} with outputs "
            f"{getattr(model, 'output', None)!r}. Fix: assemble it first."
        )
    if tasks is not None:
        raise ValueError(
            "tasks= selects tasks only when exporting factors; Received an "
            "assembled model. Fix: assemble(factors, tasks=...) first."
        )
    return model


def _check_task_names(tasks):
    for task in tasks:
        manifest_lib.check_name(task, "task name")
        if task in RESERVED_NAMES or task.startswith("_"):
            raise ValueError(
                f"Expected task names usable as signature names. Received: "
                f"{task!r}, reserved ({RESERVED_NAMES}). Fix: rename the task."
            )


def _check_signature(model):
    """Raises unless `model` takes one batch of float images of known size."""
    shape = tuple(model.input.shape)
    dtype = tf.dtypes.as_dtype(model.input.dtype)
    if len(shape) != 4 or None in shape[1:] or not dtype.is_floating:
        raise ValueError(
            "Expected a model taking float images [batch, height, width, "
            f"channels] of a known size. Received: input shape {shape}, "
            f"dtype {dtype.name}. Fix: build it with keras.Input(shape=(H, "
            "W, C)) (kfactor.assemble does)."
        )


def _with_probabilities(logits, prefix=""):
    return {
        f"{prefix}logits": logits,
        f"{prefix}probabilities": tf.nn.softmax(logits, axis=-1),
    }


def _endpoints(model):
    tasks = list(model.output)
    images = model.input
    per_task = {t: keras.Model(images, model.output[t]) for t in tasks}

    def serving_default(images):
        outputs = {}
        for task, logits in model(images, training=False).items():
            outputs.update(_with_probabilities(logits, f"{task}_"))
        return outputs

    def task_endpoint(network):
        return lambda images: _with_probabilities(
            network(images, training=False)
        )

    endpoints = {SERVING_DEFAULT: serving_default}
    endpoints.update({t: task_endpoint(n) for t, n in per_task.items()})
    return endpoints


def _from_uint8(serving_default, model):
    """`serving_default` on 8-bit pixels rescaled to the value range."""
    low, high = getattr(model, "value_range", manifest_lib.DEFAULT_VALUE_RANGE)

    def serving_uint8(images):
        scaled = tf.cast(images, "float32") * ((high - low) / 255.0) + low
        return serving_default(scaled)

    return serving_uint8


def export_for_serving(
    model_or_factors, directory, overwrite=False, tasks=None
):
    """Writes a TF Serving SavedModel of an assembled model.

    Args:
        model_or_factors: an assembled model (`kfactor.assemble`), a
            `kfactor.Factorizer`, or factors from `kfactor.load_factors`.
        directory: where to write (new or empty unless `overwrite`); the
            SavedModel is written to a temporary sibling, then renamed.
        overwrite: replace an existing non-empty `directory`.
        tasks: with factors or a Factorizer, the tasks to export (all if
            None).

    Returns:
        A summary dict: `directory`, `tasks`, `signatures` (name ->
        output names), `num_parameters`, `size_bytes`.

    Example:

    >>> summary = kfactor.export_for_serving(
    ...     kfactor.load_factors("saved_factors"), "/tmp/serving/1",
    ...     overwrite=True)                                 # doctest: +SKIP
    >>> sorted(summary["signatures"])[-1]                  # doctest: +SKIP
    'shape'
    """
    model = _as_model(model_or_factors, tasks)
    tasks = list(model.output)
    _check_task_names(tasks)
    _check_signature(model)
    spec = tf.TensorSpec(
        (None, *model.input.shape[1:]), model.input.dtype, name=INPUT_NAME
    )
    archive = keras.export.ExportArchive()
    endpoints = _endpoints(model)
    for name, fn in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=[spec])
    archive.add_endpoint(
        SERVING_UINT8,
        _from_uint8(endpoints[SERVING_DEFAULT], model),
        input_signature=[tf.TensorSpec(spec.shape, "uint8", INPUT_NAME)],
    )
    with atomic_directory(directory, overwrite) as temporary:
        archive.write_out(temporary, verbose=False)
        restored = tf.saved_model.load(temporary)
        variables = restored_variables(restored, [SERVING_DEFAULT])
    target = os.path.abspath(os.fspath(directory))
    summary = {
        "directory": target,
        "tasks": tasks,
        "input": {INPUT_NAME: [None, *spec.shape[1:]]},
        "signatures": {
            name: sorted(fn.structured_outputs)
            for name, fn in restored.signatures.items()
        },
        "num_parameters": int(sum(np.prod(v.shape) for v in variables)),
        "size_bytes": directory_size(target),
    }
    logger.info(
        "Exported tasks %s to %s: signatures %s, %d parameters, %d bytes. "
        "Not exported: the teacher, auxiliary heads, InfoMax projections.",
        tasks,
        target,
        sorted(summary["signatures"]),
        summary["num_parameters"],
        summary["size_bytes"],
    )
    return summary


def check_export(directory, model, images=None):
    """Max |reloaded export - in-memory model| over every signature output.

    Loads `directory` with `tf.saved_model.load` and compares each task's
    logits and probabilities in `serving_default` and in its own signature
    with `model` on `images` (by default 8 seeded probe images).
    """
    if images is None:
        spec = manifest_lib.input_spec(model.input.shape[1:])
        images = manifest_lib.probe_images(spec)
    expected = model(images, training=False)
    signatures = tf.saved_model.load(directory).signatures
    served = signatures[SERVING_DEFAULT](**{INPUT_NAME: tf.constant(images)})
    differences = [0.0]
    for task, logits in expected.items():
        want = _with_probabilities(logits)
        own = signatures[task](**{INPUT_NAME: tf.constant(images)})
        prefixed = {key: served[f"{task}_{key}"] for key in want}
        differences += checks.max_abs_diffs(own, want).values()
        differences += checks.max_abs_diffs(prefixed, want).values()
    return max(differences)


__all__ = [
    "INPUT_NAME",
    "RESERVED_NAMES",
    "SERVING_DEFAULT",
    "SERVING_UINT8",
    "check_export",
    "export_for_serving",
]
