"""Saving factors as artefacts: a SavedModel + manifest per factor, atomically.

```python
factorizer.save_factors("saved_factors/dsprites")
# saved_factors/dsprites/{common,shape,scale,...}/{kfactor.json,saved_model/}
```

Only inference computations are exported: the common factor (images ->
`z_common`) and, per task, `Head(z_common + mean(z_task))`. The teacher, the
auxiliary heads and the InfoMax projections are never written.
"""

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile

from kfactor import validation
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.saved_factor import restored_variables

import keras
import numpy as np
import tensorflow as tf
from keras import ops

logger = logging.getLogger(__name__)

# Re-exported: the format's file names and version live in `manifest`.
MANIFEST_FILE = manifest_lib.MANIFEST_FILE
SAVED_MODEL_DIR = manifest_lib.SAVED_MODEL_DIR
FORMAT_VERSION = manifest_lib.FORMAT_VERSION
#: Tests set it to a step of `atomic_directory` ("written", "moved_aside",
#: "replaced") to SIGKILL the saving process there.
KILL_AT_ENV = "KFACTOR_TEST_KILL_AT"


def _crash_point(step):
    """Kills this process at `step` when `KILL_AT_ENV` names it (tests)."""
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def check_target(directory, overwrite=False):
    """Raises unless `directory` may be (re)written; returns its abspath.

    A missing or empty directory may be written; a non-empty one only with
    `overwrite=True`; a file never.
    """
    target = os.path.abspath(os.fspath(directory))
    if os.path.exists(target) and not os.path.isdir(target):
        raise FileExistsError(
            f"Expected a directory path to write. Received: {target} is a "
            "file. Fix: choose another path or remove the file."
        )
    if os.path.isdir(target) and os.listdir(target) and not overwrite:
        raise FileExistsError(
            f"Expected a new or empty directory. Received: {target} exists "
            "and is not empty. Fix: pass overwrite=True (--overwrite) to "
            "replace it, or choose another directory."
        )
    return target


def _make_parent(target):
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
        return tempfile.mkdtemp(
            prefix=f".{os.path.basename(target)}{manifest_lib.TEMPORARY_INFIX}",
            dir=parent,
        )
    except OSError as err:
        raise PermissionError(
            f"Expected a writable parent directory for {target}. Received: "
            f"{type(err).__name__}: {err}. Fix: choose a writable location."
        ) from err


def _replace(temporary, target):
    """Renames `temporary` onto `target`, moving an old `target` aside.

    A kill between the two renames leaves no `target`, but the old copy in
    `.<name>.old-*/previous`, which `manifest.recovery_hint` (used by the
    loaders) names with the command restoring it. Once the new copy is in
    place, every old copy is removed.
    """
    if not os.path.isdir(target) or not os.listdir(target):
        os.replace(temporary, target)
        _crash_point("replaced")
        _remove_previous_copies(target)
        return
    old = tempfile.mkdtemp(
        prefix=f".{os.path.basename(target)}{manifest_lib.PREVIOUS_INFIX}",
        dir=os.path.dirname(target),
    )
    previous = os.path.join(old, manifest_lib.PREVIOUS_DIR)
    os.replace(target, previous)
    _crash_point("moved_aside")
    try:
        os.replace(temporary, target)
    except OSError:
        os.replace(previous, target)
        raise
    _crash_point("replaced")
    _remove_previous_copies(target)


def _remove_previous_copies(target):
    for previous in manifest_lib.previous_copies(target):
        shutil.rmtree(os.path.dirname(previous), ignore_errors=True)


def directory_size(directory):
    """Total bytes of the files under `directory`."""
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(directory)
        for name in names
    )


@contextlib.contextmanager
def atomic_directory(directory, overwrite=False):
    """Yields a temporary sibling of `directory`, renamed onto it on success.

    A failure (or crash) while writing leaves any earlier `directory` as it
    was; the temporary sibling is removed on failure.

    Example:

    >>> with atomic_directory(str(tmp_path / "out")) as tmp:  # doctest: +SKIP
    ...     open(os.path.join(tmp, "a.txt"), "w").close()
    """
    target = check_target(directory, overwrite)
    temporary = _make_parent(target)
    try:
        yield temporary
        check_target(target, overwrite)
        _crash_point("written")
        _replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


# === Inference networks ===


def task_inference_networks(factor, image_shape):
    """Functional views of a trained `TaskFactor` used at inference.

    Returns:
        `(logits_net, code_net)`: `(images, z_common) -> Head(z_common +
        mean)` and `images -> mean`, sharing the factor's encoder, code
        layer and head (not the auxiliary head, not the log-variance).
    """
    images = keras.Input(shape=image_shape, name="images")
    code = factor.code_layer(factor.encoder(images))
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


def _common_endpoints(common, spec):
    def serve(images):
        return common(images, training=False)

    return {"serve": (serve, [manifest_lib.tensor_spec(spec)])}


def _task_endpoints(factor, spec):
    logits_net, code_net = task_inference_networks(factor, spec["shape"])
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
):
    """Saves every factor of `factorizer` as `directory/<name>/`.

    Writes `common/` and one directory per task, each a SavedModel plus a
    `kfactor.json` manifest; a task's manifest records its factor network's
    logits on the probe images (`probe_record`). The whole set is written to
    a temporary sibling and renamed onto `directory` at the end, so a
    failure leaves any earlier artefact there intact.

    Args:
        factorizer: a trained `kfactor.Factorizer`.
        directory: where to write; must be new or empty unless `overwrite`.
        overwrite: replace an existing non-empty `directory`.
        test_accuracy: optional dict task -> held-out accuracy to record.
        value_range: `(low, high)` of the images the factors expect; by
            default the factorizer's `value_range` (else [0, 1]).
        extra: optional JSON-able dict stored under the manifest's `extra`.

    Returns:
        dict factor name -> its directory.

    Raises:
        kfactor.validation.NonFiniteError: a weight to export is NaN or
            Inf; nothing is written.

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
    with atomic_directory(directory, overwrite) as temporary:
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
    "probe_record",
    "save_factors",
    "task_inference_networks",
]
