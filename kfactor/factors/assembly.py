"""Assembling factors into one multi-task model, with no fine-tuning.

`assemble(factors, tasks)` builds `images -> {task: logits}`: the common
factor is called once and its variables are held once; each task factor adds
`Head_k(z_common + z_task_k)`. Because nothing is retrained, each task's
output equals its standalone factor network's (checked on a probe batch).
"""

import logging

from kfactor import validation
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.networks import FactorNetworks
from kfactor.factors.saved_factor import SavedFactor
from kfactor.factors.saving import task_inference_networks

import keras
import numpy as np

logger = logging.getLogger(__name__)

#: Largest |assembled - standalone| accepted by `assemble(verify=True)`.
TOLERANCE = 1e-5


def _as_list(factors):
    values = factors.values() if isinstance(factors, dict) else factors
    values = list(values)
    wrong = [type(f).__name__ for f in values if not isinstance(f, SavedFactor)]
    if not values or wrong:
        raise TypeError(
            "Expected a kfactor.Factorizer or factors from "
            "kfactor.load_factors (a non-empty dict or list of SavedFactor). "
            f"Received: {len(values)} items, types {sorted(set(wrong))}."
        )
    return values


def _common_of(factors):
    commons = [f for f in factors if f.role == manifest_lib.COMMON]
    fingerprints = sorted({f.weights_fingerprint for f in commons})
    if len(fingerprints) != 1:
        raise ValueError(
            "Expected exactly one common factor. Received: "
            f"{len(fingerprints)} ({[f.directory for f in commons]}). Fix: "
            "include the common/ directory saved with the task factors, "
            "and only that one."
        )
    return commons[0]


def _check_compatible(common, factor):
    for key, fix in (
        ("format_version", "re-save both with the same kfactor version"),
        ("input_spec", "assemble factors trained on the same images"),
    ):
        if factor.manifest[key] != common.manifest[key]:
            raise ValueError(
                f"Expected task factor {factor.task!r} to share the common "
                f"factor's {key}. Received: {factor.manifest[key]!r} "
                f"({factor.directory}) vs {common.manifest[key]!r} "
                f"({common.directory}). Fix: {fix}."
            )
    if factor.common_fingerprint != common.weights_fingerprint:
        raise ValueError(
            f"Expected task factor {factor.task!r} ({factor.directory}) to "
            f"be trained on this common factor. Received: its "
            f"common_fingerprint {factor.common_fingerprint} != the common "
            f"factor's {common.weights_fingerprint} ({common.directory}). "
            "Fix: load the common/ saved with that task, or train the task "
            "against this common factor (Factorizer(teacher, common="
            "factors['common'], tasks=...))."
        )


def _choose(available, tasks):
    if tasks is None:
        return list(available)
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    unknown = [t for t in tasks if t not in available]
    if unknown or not tasks:
        raise ValueError(
            f"Expected tasks among {list(available)}. Received: "
            f"tasks={tasks} (unknown: {unknown}). Fix: choose from the "
            "listed tasks (`kfactor list`)."
        )
    return tasks


def resolve(factors, tasks=None):
    """Checks `factors` and returns `(common, {task: layer}, input_spec)`.

    `factors` is a `kfactor.Factorizer` (its in-memory factors) or the
    factors of `kfactor.load_factors`. A task layer maps `[images,
    z_common]` to logits.
    """
    if isinstance(factors, FactorNetworks):
        chosen = _choose(factors.task_names, tasks)
        layers = {
            t: task_inference_networks(
                factors.task_factors[t], factors.image_shape
            )[0]
            for t in chosen
        }
        spec = manifest_lib.input_spec(factors.image_shape)
        return factors.common, layers, spec
    values = _as_list(factors)
    common = _common_of(values)
    available = {f.task: f for f in values if f.role == manifest_lib.TASK}
    if not available:
        raise ValueError(
            "Expected at least one task factor besides the common factor. "
            f"Received: only {[f.directory for f in values]}. Fix: load the "
            "task factors too, e.g. load_factors of the folder holding "
            "common/ and the task directories."
        )
    chosen = _choose(available, tasks)
    for task in chosen:
        _check_compatible(common, available[task])
    return common, {t: available[t] for t in chosen}, common.image_spec


def assemble(factors, tasks=None, verify=True, name="assembled"):
    """Assembles a common factor and task factors into one Keras model.

    Args:
        factors: factors from `kfactor.load_factors` (dict or list), or a
            `kfactor.Factorizer` (its in-memory factors, inference parts
            only).
        tasks: task names to include (a list or one name); all if None.
        verify: check on a probe batch that every task's output equals its
            standalone factor network's (max |diff| <= `TOLERANCE`).
        name: the model's name.

    Returns:
        A functional `keras.Model` images -> `{task: logits}`.

    Raises:
        ValueError: no or several common factors, no task factor, a task
            trained on another common factor, another input spec or format
            version, an unknown task.
        kfactor.validation.NonFiniteError: a weight is NaN or Inf.

    Example:

    >>> model = kfactor.assemble(kfactor.load_factors("saved_factors"),
    ...                          tasks=["shape", "scale"])  # doctest: +SKIP
    >>> sorted(model.output)                               # doctest: +SKIP
    ['scale', 'shape']
    """
    common, task_layers, spec = resolve(factors, tasks)

    # === Functional Model ===
    images = keras.Input(shape=tuple(spec["shape"]), name="images")
    z_common = common(images)
    outputs = {
        task: layer([images, z_common]) for task, layer in task_layers.items()
    }
    model = keras.Model(images, outputs, name=name)
    validation.check_finite_variables(model.weights, "the assembled factors")
    if verify:
        differences = check_assembly(model, factors)
        worst = max(differences.values())
        logger.info("Assembled %s; max |diff| %s.", list(outputs), differences)
        if not worst <= TOLERANCE:
            raise ValueError(
                f"Expected the assembled outputs to equal the standalone "
                f"factor networks' (max |diff| <= {TOLERANCE}). Received: "
                f"{differences}. Fix: report this as a kfactor bug."
            )
    return model


def factor_network(factors, task):
    """The standalone factor network of `task`: images -> logits.

    Example:

    >>> network = factor_network(factors, "shape")        # doctest: +SKIP
    """
    if isinstance(factors, FactorNetworks):
        return factors.factor_network(task)
    common, layers, spec = resolve(factors, [task])
    images = keras.Input(shape=tuple(spec["shape"]), name="images")
    logits = layers[task]([images, common(images)])
    return keras.Model(images, logits, name=f"factor_network_{task}")


def check_assembly(model, factors, images=None):
    """Max |assembled - standalone| per task of `model`, on `images`.

    Args:
        model: an assembled model images -> `{task: logits}`.
        factors: the factors it was assembled from (or a `Factorizer`).
        images: a batch; by default 8 seeded probe images of the spec.

    Returns:
        dict task -> max absolute difference (float).
    """
    if images is None:
        spec = resolve(factors, list(model.output))[2]
        images = manifest_lib.probe_images(spec)
    assembled = model(images, training=False)
    return {
        task: float(
            np.max(
                np.abs(
                    np.asarray(factor_network(factors, task)(images))
                    - np.asarray(logits)
                )
            )
        )
        for task, logits in assembled.items()
    }


__all__ = [
    "TOLERANCE",
    "assemble",
    "check_assembly",
    "factor_network",
    "resolve",
]
