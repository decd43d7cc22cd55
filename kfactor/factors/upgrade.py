"""Bringing saved factors to the current manifest format, in place.

Task factors saved before manifests recorded `probe_images`/`probe_logits`
make `assemble(verify=True)` fall back to its weaker check. Their weights
are all it takes to add them: `record_probe_logits(directory)` loads each
such factor with the common factor it was saved with, computes its logits
on the probe images, and rewrites its manifest (atomically; the SavedModel
and the weights fingerprint are untouched).

The recorded logits are then those of the loaded SavedModel, not of the
in-memory network at save time: later loads (on another machine, another
TensorFlow) are checked against this one.

```bash
python -m kfactor.factors.upgrade saved_factors/dsprites
```
"""

import json
import os
import sys
import tempfile

from kfactor.factors import manifest as manifest_lib
from kfactor.factors.plugins import factor_directories
from kfactor.factors.saved_factor import SavedFactor

import numpy as np


def _write_atomically(manifest, directory):
    manifest_lib.validate_manifest(manifest, directory)
    handle, temporary = tempfile.mkstemp(prefix=".kfactor.json.", dir=directory)
    try:
        with os.fdopen(handle, "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(
            temporary, os.path.join(directory, manifest_lib.MANIFEST_FILE)
        )
    except BaseException:
        os.remove(temporary)
        raise


def _commons(directories):
    return {
        manifest["weights_fingerprint"]: directory
        for directory, manifest in directories.items()
        if manifest["role"] == manifest_lib.COMMON
    }


def _probe_logits(task_dir, common_dir):
    task = SavedFactor(task_dir)
    common = SavedFactor(common_dir)
    description = {
        "num": manifest_lib.PROBE_NUM,
        "seed": manifest_lib.PROBE_SEED,
    }
    images = manifest_lib.probe_images(task.image_spec, **description)
    logits = task((images, common(images)))
    return {
        "probe_images": description,
        "probe_logits": np.asarray(logits, "float32").tolist(),
    }


def record_probe_logits(directory):
    """Adds `probe_images`/`probe_logits` to the task factors lacking them.

    Args:
        directory: a folder of factors (as `load_factors` takes); each
            task's common factor (by `common_fingerprint`) must be in it.

    Returns:
        The task factor directories whose manifests were rewritten.

    Example:

    >>> record_probe_logits("saved_factors/dsprites")  # doctest: +SKIP
    ['.../orientation', '.../pos_x', ...]
    """
    directories = {
        d: manifest_lib.read_manifest(d) for d in factor_directories(directory)
    }
    commons = _commons(directories)
    upgraded = []
    for task_dir, manifest in sorted(directories.items()):
        if manifest["role"] != manifest_lib.TASK or "probe_logits" in manifest:
            continue
        common_dir = commons.get(manifest["common_fingerprint"])
        if common_dir is None:
            raise manifest_lib.FactorFormatError(
                f"Expected the common factor of {task_dir} (fingerprint "
                f"{manifest['common_fingerprint']}) under {directory}. "
                "Received: none. Fix: pass the folder holding both."
            )
        probe = _probe_logits(task_dir, common_dir)
        _write_atomically({**manifest, **probe}, task_dir)
        upgraded.append(task_dir)
    return upgraded


def main(argv):
    for directory in argv[1:]:
        for upgraded in record_probe_logits(directory):
            print(f"recorded probe_logits in {upgraded}")


if __name__ == "__main__":
    main(sys.argv)


__all__ = [
    "record_probe_logits",
]
