"""The on-disk factor format: file names, the manifest schema, fingerprints.

A factor directory holds a SavedModel and a JSON manifest:

```none
<factor>/
  kfactor.json       # the manifest (MANIFEST_KEYS), validated on load
  saved_model/       # tf.saved_model: endpoint `serve` (and `encode`)
```

The common factor's `serve` maps images to `z_common`; a task factor's `serve`
maps `(images, z_common)` to the task's logits. `docs/FACTORS.md` documents
every manifest key.
"""

import datetime
import glob
import hashlib
import json
import os
import re
import warnings

from kfactor.version import __version__

import keras
import numpy as np
import tensorflow as tf

MANIFEST_FILE = "kfactor.json"
SAVED_MODEL_DIR = "saved_model"
FORMAT_VERSION = 1
COMMON = "common"
TASK = "task"
ROLES = (COMMON, TASK)
#: Images in [0, 1], channels last: kfactor's encoders rescale them
#: themselves (`kfactor.zoo.simple_conv64`), so no other preprocessing.
DEFAULT_VALUE_RANGE = (0.0, 1.0)
DEFAULT_PREPROCESSING = (
    "float images in value_range, channels last; the factor applies its "
    "own normalisation"
)
#: Hidden siblings of a directory being (over)written: `.<name>.tmp-*` holds
#: the new copy while it is written, `.<name>.old-*/previous` the old one
#: between the two renames of an overwrite (`kfactor.factors.saving`).
TEMPORARY_INFIX = ".tmp-"
PREVIOUS_INFIX = ".old-"
PREVIOUS_DIR = "previous"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT = (int, np.integer)

# key -> (accepted types, whether None is allowed). Versioning: a change a
# reader must understand bumps FORMAT_VERSION, and a reader refuses a newer
# one ("upgrade kfactor to >= <the writer's version>"); within one
# format_version new top-level keys are optional, so a reader warns about
# (`FactorFormatWarning`) and ignores top-level keys it does not know. A
# writer writes only the keys below; free-form metadata goes under `extra`.
MANIFEST_KEYS = {
    "format_version": (_INT, False),
    "role": (str, False),
    "name": (str, False),
    "task": (str, True),
    "num_classes": (_INT, True),
    "code_dim": (_INT, False),
    "input_spec": (dict, False),
    "weights_fingerprint": (str, False),
    "common_fingerprint": (str, False),
    "teacher": (dict, False),
    "objective": (list, False),
    "test_accuracy": ((float, int), True),
    "created": (str, False),
    "versions": (dict, False),
}
#: `probe_images` ({num, seed} of `probe_images`) and `probe_logits` (the
#: task's logits on them, `[num][num_classes]`) come together, on task
#: factors only: what the factor network gave at save time, compared by
#: `assemble(verify=True)`. Factors saved before they existed lack them.
OPTIONAL_KEYS = {
    "extra": (dict, False),
    "probe_images": (dict, False),
    "probe_logits": (list, False),
}
PROBE_KEYS = ("num", "seed")
#: The default probe batch of `probe_images` (and so of `save_factors`).
PROBE_NUM = 8
PROBE_SEED = 0
INPUT_SPEC_KEYS = ("shape", "dtype", "value_range", "preprocessing")
TEACHER_KEYS = ("name", "weights_fingerprint")


class FactorFormatError(ValueError):
    """A factor directory or manifest that kfactor cannot use."""


class FactorFormatWarning(UserWarning):
    """A manifest has keys this kfactor does not know (a newer writer's)."""


def check_name(name, what="factor name"):
    """Raises unless `name` is an identifier (a directory and signature key).

    Example:

    >>> check_name("pos_x")
    'pos_x'
    """
    if not isinstance(name, str) or not _NAME.match(name) or name == COMMON:
        raise ValueError(
            f"Expected the {what} to be an identifier (letters, digits, _) "
            f"other than {COMMON!r}. Received: {name!r}. Fix: rename the "
            "task (it names a directory and a serving signature)."
        )
    return name


def variable_digest(variable):
    """sha256 of one variable's dtype, shape and raw bytes (hex)."""
    value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
    digest = hashlib.sha256()
    digest.update(f"{value.dtype.str}|{value.shape}|".encode())
    digest.update(value.tobytes())
    return digest.hexdigest()


def weights_fingerprint(variables):
    """A fingerprint of a set of variables, independent of order and names.

    sha256 over the sorted per-variable digests (`variable_digest`), so the
    in-memory layer and its reloaded SavedModel give the same value.

    Args:
        variables: Keras or TensorFlow variables (or arrays).

    Returns:
        `"sha256:<hex>"`.

    Example:

    >>> weights_fingerprint([np.zeros(2, "float32")])[:7]
    'sha256:'
    """
    digests = sorted(variable_digest(v) for v in variables)
    joined = hashlib.sha256("\n".join(digests).encode()).hexdigest()
    return f"sha256:{joined}"


def input_spec(image_shape, value_range=DEFAULT_VALUE_RANGE):
    """The manifest's `input_spec` of float32 images shaped `image_shape`."""
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise ValueError(
            "Expected value_range=(low, high) with low < high. "
            f"Received: value_range={value_range!r}"
        )
    return {
        "shape": [int(d) for d in image_shape],
        "dtype": "float32",
        "value_range": [low, high],
        "preprocessing": DEFAULT_PREPROCESSING,
    }


def probe_images(spec, num=PROBE_NUM, seed=PROBE_SEED):
    """A seeded batch of uniform images in the spec's value range (NumPy).

    Example:

    >>> spec = input_spec((2, 2, 1))
    >>> probe_images(spec, num=3).shape
    (3, 2, 2, 1)
    """
    low, high = spec["value_range"]
    rng = np.random.default_rng(seed)
    shape = (num, *spec["shape"])
    return rng.uniform(low, high, shape).astype(spec["dtype"])


def tensor_spec(spec, name="images"):
    """The `tf.TensorSpec` (any batch size) of images of `spec`."""
    return tf.TensorSpec((None, *spec["shape"]), spec["dtype"], name=name)


def versions():
    """The versions recorded in a manifest."""
    return {
        "kfactor": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"
    )


def previous_copies(target):
    """Old copies of `target` left by interrupted overwrites, newest first."""
    target = os.path.abspath(os.fspath(target))
    pattern = os.path.join(
        os.path.dirname(target),
        f".{glob.escape(os.path.basename(target))}{PREVIOUS_INFIX}*",
        PREVIOUS_DIR,
    )
    return sorted(glob.glob(pattern), key=os.path.getmtime, reverse=True)


def recovery_hint(path):
    """How to restore `path` (or its parent) after an interrupted overwrite.

    Returns:
        A sentence naming the old copy and the command restoring it, or ""
        when there is nothing to recover.
    """
    path = os.path.abspath(os.fspath(path))
    for target in (path, os.path.dirname(path)):
        if os.path.exists(target):
            continue
        copies = previous_copies(target)
        if copies:
            return (
                f" An overwrite of {target} was interrupted before the new "
                f"copy was in place; the previous artefact survives in "
                f"{copies[0]}. Fix: restore it with `mv {copies[0]} "
                f"{target}`, or save the factors again."
            )
    return ""


def write_manifest(manifest, directory):
    """Validates `manifest` and writes it as `directory/kfactor.json`."""
    path = os.path.join(directory, MANIFEST_FILE)
    validate_manifest(manifest, path)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    return path


def read_manifest(directory):
    """Reads and validates the manifest of the factor in `directory`.

    Raises:
        FactorFormatError: the manifest is missing, not JSON, or invalid.
    """
    path = os.path.join(directory, MANIFEST_FILE)
    if not os.path.isfile(path):
        raise FactorFormatError(
            f"Expected a factor manifest at {path}. Received: no such file. "
            "Fix: point at a directory written by Factorizer.save_factors "
            "(it holds kfactor.json and saved_model/)."
        )
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FactorFormatError(
            f"Expected {path} to be a JSON manifest. Received: unreadable "
            f"({err}). Fix: re-save the factor with save_factors."
        ) from err
    validate_manifest(manifest, path, unknown_keys="warn")
    return manifest


def _fail(path, expected, received, fix):
    raise FactorFormatError(
        f"Invalid factor manifest {path}: expected {expected}. "
        f"Received: {received}. Fix: {fix}"
    )


def _check_keys(
    path, mapping, required, optional=(), where="the manifest", unknown="error"
):
    missing = [k for k in required if k not in mapping]
    if missing:
        _fail(
            path,
            f"every key of {where}: {sorted(required)}",
            f"missing {missing}",
            "re-save the factor with save_factors (manifests are not "
            "edited by hand).",
        )
    extra = sorted(set(mapping) - set(required) - set(optional))
    if extra and unknown == "warn":
        warnings.warn(
            f"The factor manifest {path} has keys this kfactor "
            f"({__version__}) does not know: {extra}, ignored (optional keys "
            "of a newer kfactor, same format_version). Fix: upgrade "
            "kfactor to use them.",
            FactorFormatWarning,
            stacklevel=4,
        )
    elif extra:
        _fail(
            path,
            f"only the keys {sorted(required)} in {where}",
            f"unknown keys {extra}",
            "put custom metadata under the top-level 'extra' dict.",
        )


def _check_version(manifest, path):
    """Raises once, before any other check, on a newer format_version."""
    version = manifest.get("format_version")
    if not isinstance(version, _INT) or version <= FORMAT_VERSION:
        return
    writer = manifest.get("versions")
    writer = writer.get("kfactor") if isinstance(writer, dict) else None
    if isinstance(writer, str):
        fix = (
            f"upgrade kfactor to >= {writer}: "
            f"pip install -U 'kfactor>={writer}'."
        )
    else:
        fix = (
            f"upgrade kfactor to a version that reads format_version {version}."
        )
    _fail(
        path,
        f"format_version <= {FORMAT_VERSION} (what kfactor {__version__} "
        "reads)",
        f"format_version={version}, written by a newer kfactor",
        fix,
    )


def validate_manifest(manifest, path="<manifest>", unknown_keys="error"):
    """Raises `FactorFormatError` naming the first problem of `manifest`.

    Args:
        manifest: the parsed JSON.
        path: where it came from, for the error message.
        unknown_keys: `"error"` (what a writer checks) or `"warn"` (what a
            reader does: a `FactorFormatWarning` naming top-level keys a
            newer kfactor added within the same format_version).

    Returns:
        `manifest`, unchanged.
    """
    if not isinstance(manifest, dict):
        _fail(path, "a JSON object", type(manifest).__name__, "re-save it.")
    _check_version(manifest, path)
    _check_keys(
        path, manifest, MANIFEST_KEYS, OPTIONAL_KEYS, unknown=unknown_keys
    )
    for key, (types, nullable) in {**MANIFEST_KEYS, **OPTIONAL_KEYS}.items():
        value = manifest.get(key)
        if key not in manifest or (value is None and nullable):
            continue
        if not isinstance(value, types) or isinstance(value, bool):
            _fail(path, f"{key} of type {types}", repr(value), "re-save it.")
    if manifest["format_version"] < 1:
        _fail(
            path,
            "format_version >= 1",
            manifest["format_version"],
            "re-save the factor with save_factors.",
        )
    role = manifest["role"]
    if role not in ROLES:
        _fail(path, f"role in {ROLES}", repr(role), "re-save the factor.")
    is_task = role == TASK
    if is_task != (manifest["task"] is not None) or is_task != (
        manifest["num_classes"] is not None
    ):
        _fail(
            path,
            "task and num_classes set exactly for role 'task'",
            f"role={role!r}, task={manifest['task']!r}, "
            f"num_classes={manifest['num_classes']!r}",
            "re-save the factor.",
        )
    _check_keys(path, manifest["input_spec"], INPUT_SPEC_KEYS, (), "input_spec")
    _check_keys(path, manifest["teacher"], TEACHER_KEYS, (), "teacher")
    _check_probe(path, manifest)
    return manifest


def _is_int(value, low):
    return (
        isinstance(value, _INT)
        and not isinstance(value, bool)
        and (value >= low)
    )


def _is_logit_row(row, num_classes):
    return (
        isinstance(row, list)
        and len(row) == num_classes
        and all(
            isinstance(x, (float, int))
            and not isinstance(x, bool)
            and np.isfinite(x)
            for x in row
        )
    )


def _check_probe(path, manifest):
    """Checks the optional `probe_images` + `probe_logits` (OPTIONAL_KEYS)."""
    present = [k for k in ("probe_images", "probe_logits") if k in manifest]
    if not present:
        return
    fix = "re-save the factor with save_factors."
    if len(present) == 1 or manifest["role"] != TASK:
        _fail(
            path,
            "probe_images and probe_logits together, on a task factor",
            f"{present} on role {manifest['role']!r}",
            fix,
        )
    probe = manifest["probe_images"]
    _check_keys(path, probe, PROBE_KEYS, (), "probe_images")
    if not (_is_int(probe["num"], 1) and _is_int(probe["seed"], 0)):
        _fail(path, "probe_images num >= 1 and seed >= 0", probe, fix)
    logits = manifest["probe_logits"]
    num_classes = manifest["num_classes"]
    if len(logits) != probe["num"] or not all(
        _is_logit_row(row, num_classes) for row in logits
    ):
        _fail(
            path,
            f"probe_logits as {probe['num']} lists of {num_classes} finite "
            "numbers (probe_images num x num_classes)",
            f"{str(logits)[:200]}",
            fix,
        )


__all__ = [
    "COMMON",
    "DEFAULT_PREPROCESSING",
    "DEFAULT_VALUE_RANGE",
    "FORMAT_VERSION",
    "INPUT_SPEC_KEYS",
    "MANIFEST_FILE",
    "MANIFEST_KEYS",
    "OPTIONAL_KEYS",
    "PROBE_KEYS",
    "PROBE_NUM",
    "PROBE_SEED",
    "ROLES",
    "SAVED_MODEL_DIR",
    "TASK",
    "TEACHER_KEYS",
    "FactorFormatError",
    "FactorFormatWarning",
    "check_name",
    "input_spec",
    "probe_images",
    "read_manifest",
    "tensor_spec",
    "utc_now",
    "validate_manifest",
    "variable_digest",
    "versions",
    "weights_fingerprint",
    "write_manifest",
]
