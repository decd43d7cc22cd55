"""Publishing a trained factorization: save, reload, assemble, export, check.

`publish_factors(factorizer, directory)` is the last step of a training run
(`kfactor demo` calls it): it writes

```none
<directory>/factors/{common,<task>...}/   # one SavedModel + manifest each
<directory>/serving/1/                    # TF Serving SavedModel, all tasks
```

and measures that nothing changed on the way: the factors reloaded from disk
and assembled give the in-memory factor networks' logits, and the reloaded
serving export gives the assembled model's.
"""

import logging
import os

from kfactor.factors import checks
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.assembly import assemble
from kfactor.factors.export import check_export
from kfactor.factors.export import export_for_serving
from kfactor.factors.networks import FactorNetworks
from kfactor.factors.plugins import load_factors
from kfactor.factors.saving import directory_size

logger = logging.getLogger(__name__)

FACTORS_SUBDIR = "factors"
#: TF Serving wants `<model_base_path>/<version>/saved_model.pb`.
SERVING_SUBDIR = os.path.join("serving", "1")


def _check_networks(factorizer):
    if not isinstance(factorizer, FactorNetworks):
        raise TypeError(
            "Expected a trained kfactor.Factorizer (a kfactor.factors."
            f"FactorNetworks). Received: {type(factorizer).__name__}. Fix: "
            "pass the factorizer; to re-export saved factors use "
            "kfactor.export_for_serving(kfactor.load_factors(...), ...)."
        )


def publish_factors(
    factorizer,
    directory,
    test_accuracy=None,
    probe_images=None,
    overwrite=False,
):
    """Saves the factors, reloads and assembles them, exports for serving.

    Args:
        factorizer: a trained `kfactor.Factorizer` (any
            `kfactor.factors.FactorNetworks`).
        directory: output folder; `factors/` and `serving/1/` go inside.
        test_accuracy: optional dict task -> accuracy for the manifests.
        probe_images: a batch to compare outputs on; by default 8 seeded
            uniform images in [0, 1].
        overwrite: replace earlier `factors/` and `serving/1/`.

    Returns:
        dict with `factors_dir`, `export_dir`, `tasks`,
        `assembled_max_abs_diff` (reloaded + assembled vs in-memory factor
        networks, max over tasks), `assembled_max_abs_diff_per_task`,
        `export_max_abs_diff` (reloaded export vs assembled model, every
        signature), `export_num_parameters`, `export_size_bytes`,
        `factors_size_bytes`.

    Example:

    >>> report = publish_factors(factorizer, "runs/demo")  # doctest: +SKIP
    >>> report["assembled_max_abs_diff"] <= 1e-5           # doctest: +SKIP
    True
    """
    _check_networks(factorizer)
    factors_dir = os.path.join(directory, FACTORS_SUBDIR)
    export_dir = os.path.join(directory, SERVING_SUBDIR)
    factorizer.save_factors(
        factors_dir, overwrite=overwrite, test_accuracy=test_accuracy
    )
    factors = load_factors(factors_dir)
    model = assemble(factors, verify=True)
    if probe_images is None:
        spec = manifest_lib.input_spec(factorizer.image_shape)
        probe_images = manifest_lib.probe_images(spec)
    assembled = model(probe_images, training=False)
    in_memory = {
        task: factorizer.factor_network(task)(probe_images)
        for task in factorizer.task_names
    }
    per_task = checks.max_abs_diffs(in_memory, assembled)
    summary = export_for_serving(model, export_dir, overwrite=overwrite)
    report = {
        "factors_dir": os.path.abspath(factors_dir),
        "export_dir": summary["directory"],
        "tasks": list(factorizer.task_names),
        "assembled_max_abs_diff": max(per_task.values()),
        "assembled_max_abs_diff_per_task": per_task,
        "export_max_abs_diff": check_export(export_dir, model, probe_images),
        "export_num_parameters": summary["num_parameters"],
        "export_size_bytes": summary["size_bytes"],
        "factors_size_bytes": directory_size(factors_dir),
    }
    logger.info(
        "Published %s: assembled max |diff| %.3g, export max |diff| %.3g.",
        directory,
        report["assembled_max_abs_diff"],
        report["export_max_abs_diff"],
    )
    return report


__all__ = [
    "FACTORS_SUBDIR",
    "SERVING_SUBDIR",
    "publish_factors",
]
