"""Saving factors as artefacts: a SavedModel + manifest per factor, atomically.

```python
factorizer.save_factors("saved_factors/dsprites")
# saved_factors/dsprites/{common,shape,scale,...}/{kfactor.json,saved_model/}
```

Only inference computations are exported: the common factor (images ->
`z_common`) and, per task, `Head(z_common + mean(z_task))`. The teacher, the
auxiliary heads and the InfoMax projections are never written. Batch
normalization is folded into the convolution before it where it can be
(`kfactor.factors.folding`), so the SavedModels hold inference graphs
only; each task's manifest records the *unfolded* in-memory network's
logits on the probe images, which `assemble(verify=True)` checks the
loaded factors against.
"""

import json
import logging
import os

from kfactor import validation
from kfactor.factors import atomic
from kfactor.factors import folding
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.saved_factor import restored_variables
from kfactor.layers.factor_layers import CommonFactor

import keras
import numpy as np
import tensorflow as tf
from keras import ops

logger = logging.getLogger(__name__)

# Re-exported: the format's file names and version live in `manifest`.
MANIFEST_FILE = manifest_lib.MANIFEST_FILE
SAVED_MODEL_DIR = manifest_lib.SAVED_MODEL_DIR
FORMAT_VERSION = manifest_lib.FORMAT_VERSION
check_target = atomic.check_target
atomic_directory = atomic.atomic_directory
directory_size = atomic.directory_size


# === Inference networks ===


def _probe(image_shape):
    return manifest_lib.probe_images(manifest_lib.input_spec(image_shape))


def task_inference_networks(factor, image_shape, fold_batch_norm=False):
    """Functional views of a trained `TaskFactor` used at inference.

    Args:
        factor: a `kfactor.TaskFactor`.
        image_shape: `(height, width, channels)`.
        fold_batch_norm: use an inference copy of the factor's encoder with
            its batch normalizations folded into the layers before them
            (`kfactor.factors.folding.fold_if_possible`, checked on the
            probe images); False shares the encoder itself.

    Returns:
        `(logits_net, code_net)`: `(images, z_common) -> Head(z_common +
        mean)` and `images -> mean`, sharing the factor's encoder (or its
        folded copy), code layer and head (not the auxiliary head, not the
        log-variance).
    """
    encoder = factor.encoder
    if fold_batch_norm:
        encoder = folding.fold_if_possible(encoder, _probe(image_shape))
    images = keras.Input(shape=image_shape, name="images")
    code = factor.code_layer(encoder(images))
    if factor.variational:
        code, _ = ops.split(code, 2, axis=-1)
    code_net = keras.Model(images, code, name=f"{factor.name}_code")
    z_common = keras.Input(shape=(factor.code_dim,), name="z_common")
    logits = factor.head(z_common + code_net(images))
    logits_net = keras.Model(
        [images, z_common], logits, name=f"{factor.name}_logits"
    )
    return logits_net, code_net


def _write_saved_model(directory, endpoints):
    archive = keras.export.ExportArchive()
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(directory, verbose=False)
    return restored_variables(tf.saved_model.load(directory), endpoints)


def export_factor(directory, manifest, endpoints):
    """Writes one factor directory; returns its weights fingerprint.

    The fingerprint is taken on the reloaded SavedModel, exactly as a loader
    will see it, and written into the manifest.
    """
    os.makedirs(directory)
    saved_model = os.path.join(directory, SAVED_MODEL_DIR)
    fingerprint = manifest_lib.weights_fingerprint(
        _write_saved_model(saved_model, endpoints)
    )
    manifest = dict(manifest, weights_fingerprint=fingerprint)
    if manifest["role"] == manifest_lib.COMMON:
        manifest["common_fingerprint"] = fingerprint
    manifest_lib.write_manifest(manifest, directory)
    return fingerprint


def inference_common(common, image_shape):
    """The common factor as it runs at inference: a `CommonFactor`'s
    encoder with batch normalization folded (`kfactor.factors.folding`),
    as a functional model named like the factor; `common` itself when
    nothing folds (a subclassed encoder, no batch normalization, or a
    loaded factor)."""
    if not isinstance(common, CommonFactor):
        return common
    encoder = common.encoder
    folded = folding.fold_if_possible(encoder, _probe(image_shape))
    if folded is encoder:
        return common
    images = keras.Input(shape=image_shape, name="images")
    return keras.Model(images, folded(images), name=common.name)


def _common_endpoints(common, spec):
    common = inference_common(common, spec["shape"])

    def serve(images):
        return common(images, training=False)

    return {"serve": (serve, [manifest_lib.tensor_spec(spec)])}


def _task_endpoints(factor, spec):
    logits_net, code_net = task_inference_networks(
        factor, spec["shape"], fold_batch_norm=True
    )
    code_spec = tf.TensorSpec((None, factor.code_dim), "float32", "z_common")

    def serve(images, z_common):
        return logits_net([images, z_common], training=False)

    def encode(images):
        return code_net(images, training=False)

    return {
        "serve": (serve, [manifest_lib.tensor_spec(spec), code_spec]),
        "encode": (encode, [manifest_lib.tensor_spec(spec)]),
    }


# === save_factors ===


def check_finite_factors(factorizer, image_shape):
    """Raises `NonFiniteError` if a weight `save_factors` exports is not
    finite (the teacher, auxiliary heads and projections are not saved)."""
    validation.check_finite_variables(
        factorizer.common.weights, "the common factor"
    )
    for task, factor in factorizer.task_factors.items():
        logits_net, _ = task_inference_networks(factor, image_shape)
        validation.check_finite_variables(
            logits_net.weights, f"task factor {task!r}"
        )


def _check_accuracy(test_accuracy, tasks):
    test_accuracy = dict(test_accuracy or {})
    unknown = sorted(set(test_accuracy) - set(tasks))
    if unknown:
        raise ValueError(
            f"test_accuracy names tasks {unknown} that the factorizer does "
            f"not have. Received keys: {sorted(test_accuracy)}; tasks: "
            f"{list(tasks)}."
        )
    return {t: float(a) for t, a in test_accuracy.items()}


def base_manifest(factorizer, value_range, extra):
    """The manifest fields every factor of `factorizer` shares."""
    objective = [
        keras.saving.serialize_keras_object(loss)
        for loss in factorizer.factor_losses
    ]
    manifest = {
        "format_version": FORMAT_VERSION,
        "code_dim": int(factorizer.code_dim),
        "input_spec": manifest_lib.input_spec(
            factorizer.image_shape, value_range
        ),
        "teacher": {
            "name": factorizer.teacher.name,
            "weights_fingerprint": manifest_lib.weights_fingerprint(
                factorizer.teacher.weights
            ),
        },
        "objective": json.loads(json.dumps(objective)),
        "created": manifest_lib.utc_now(),
        "versions": manifest_lib.versions(),
    }
    if extra is not None:
        manifest["extra"] = json.loads(json.dumps(extra))
    return manifest


def probe_record(factorizer, task, spec):
    """The manifest's `probe_images` and `probe_logits` of one task.

    The logits are those of the in-memory factor network
    (`factorizer.factor_network(task)`) on `manifest.probe_images(spec)`,
    as float32 values: `assemble(verify=True)` compares the loaded and
    assembled factors with them, a check independent of loading.
    """
    description = {
        "num": manifest_lib.PROBE_NUM,
        "seed": manifest_lib.PROBE_SEED,
    }
    images = manifest_lib.probe_images(spec, **description)
    logits = factorizer.factor_network(task)(images, training=False)
    return {
        "probe_images": description,
        "probe_logits": np.asarray(logits, "float32").tolist(),
    }


def save_factors(
    factorizer,
    directory,
    overwrite=False,
    test_accuracy=None,
    value_range=None,
    extra=None,
    lock_timeout=atomic.LOCK_TIMEOUT_S,
):
    """Saves every factor of `factorizer` as `directory/<name>/`.

    Writes `common/` and one directory per task, each a SavedModel plus a
    `kfactor.json` manifest; a task's manifest records its factor network's
    logits on the probe images (`probe_record`). The whole set is written to
    a temporary sibling and swapped onto `directory` at the end
    (`kfactor.factors.atomic`): a failure leaves any earlier artefact there
    intact and no temporary copy; two processes saving to one `directory`
    take turns (the second waits at most `lock_timeout` seconds); a reader
    sees the old or the new set, never a mix.

    Args:
        factorizer: a trained `kfactor.Factorizer`.
        directory: where to write; must be new or empty unless `overwrite`.
        overwrite: replace an existing non-empty `directory`.
        test_accuracy: optional dict task -> held-out accuracy to record.
        value_range: `(low, high)` of the images the factors expect; by
            default the factorizer's `value_range` (else [0, 1]).
        extra: optional JSON-able dict stored under the manifest's `extra`.
        lock_timeout: seconds to wait for another process saving to
            `directory` (`kfactor.factors.atomic.LOCK_TIMEOUT_S`).

    Returns:
        dict factor name -> its directory.

    Raises:
        kfactor.validation.NonFiniteError: a weight to export is NaN or
            Inf; nothing is written.
        TimeoutError: another process kept saving to `directory` for
            `lock_timeout` seconds.
        OSError: the write failed (no space left, read-only, permission):
            the message names the cause and the path; nothing changed.

    Example:

    >>> paths = factorizer.save_factors(str(tmp_path / "f"))  # doctest: +SKIP
    >>> sorted(paths)                                        # doctest: +SKIP
    ['col', 'common', 'row']
    """
    for task in factorizer.task_names:
        manifest_lib.check_name(task, "task name")
    accuracy = _check_accuracy(test_accuracy, factorizer.task_names)
    if value_range is None:
        value_range = (
            getattr(factorizer, "value_range", None)
            or manifest_lib.DEFAULT_VALUE_RANGE
        )
    base = base_manifest(factorizer, value_range, extra)
    spec = base["input_spec"]
    check_finite_factors(factorizer, spec["shape"])
    names = [manifest_lib.COMMON, *factorizer.task_names]
    with atomic_directory(directory, overwrite, lock_timeout) as temporary:
        common = {
            **base,
            "role": manifest_lib.COMMON,
            "name": manifest_lib.COMMON,
            "task": None,
            "num_classes": None,
            "test_accuracy": None,
        }
        fingerprint = export_factor(
            os.path.join(temporary, manifest_lib.COMMON),
            {**common, "common_fingerprint": ""},
            _common_endpoints(factorizer.common, spec),
        )
        for task, factor in factorizer.task_factors.items():
            export_factor(
                os.path.join(temporary, task),
                {
                    **base,
                    "role": manifest_lib.TASK,
                    "name": task,
                    "task": task,
                    "num_classes": int(factorizer.num_classes[task]),
                    "common_fingerprint": fingerprint,
                    "test_accuracy": accuracy.get(task),
                    **probe_record(factorizer, task, spec),
                },
                _task_endpoints(factor, spec),
            )
    target = os.path.abspath(os.fspath(directory))
    logger.info("Saved factors %s to %s.", names, target)
    return {name: os.path.join(target, name) for name in names}


__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "SAVED_MODEL_DIR",
    "atomic_directory",
    "base_manifest",
    "check_target",
    "directory_size",
    "export_factor",
    "inference_common",
    "probe_record",
    "save_factors",
    "task_inference_networks",
]
