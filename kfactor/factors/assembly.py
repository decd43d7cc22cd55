"""Assembling factors into one multi-task model, with no fine-tuning.

`assemble(factors, tasks)` builds `images -> {task: logits}`: the common
factor is called once and its variables are held once; each task factor adds
`Head_k(z_common + z_task_k)`. Because nothing is retrained, each task's
output equals its factor network's at save time: `verify=True` checks it on
the probe images against the logits each task's manifest recorded then.
"""

import logging

from kfactor import validation
from kfactor.factors import checks
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.networks import FactorNetworks
from kfactor.factors.saved_factor import SavedFactor
from kfactor.factors.saving import inference_common
from kfactor.factors.saving import task_inference_networks

import keras

logger = logging.getLogger(__name__)

#: Largest |assembled - standalone| accepted by `assemble(verify=True)` when
#: both run in this process on the same weights (`check_assembly`), as a
#: fraction of the standalone logits' scale `max(1, max |logits|)`. Folding
#: batch normalization changes the float32 rounding by about 1e-6 of it.
TOLERANCE = 1e-5
#: Largest |assembled - recorded| accepted by `assemble(verify=True)`, as a
#: fraction of the recorded logits' scale `max(1, max |recorded|)`. The
#: recorded logits may come from another machine: float32 on another
#: device or kernel library (oneDNN, GPU TF32 convolutions) differs by
#: about 1e-6 to 1e-3 of the scale; loading the wrong or changed weights
#: moves the logits by the order of the scale itself.
RECORDED_TOLERANCE = 1e-3
#: The fix `verify` names when loaded factors miss their recorded logits.
RECORDED_FIX = (
    "the factor files give other logits than the network that saved them: "
    "re-install the factors (or re-save them from the trained "
    "factorizer); if they are unchanged, report a kfactor bug with the "
    "TensorFlow and Keras versions of the manifest and of this process."
)


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


def resolve(factors, tasks=None, fold_batch_norm=False):
    """Checks `factors` and returns `(common, {task: layer}, input_spec)`.

    `factors` is a `kfactor.Factorizer` (its in-memory factors) or the
    factors of `kfactor.load_factors`. A task layer maps `[images,
    z_common]` to logits. `fold_batch_norm` folds the in-memory encoders'
    batch normalization (`kfactor.factors.folding`); loaded factors were
    folded when saved.
    """
    if isinstance(factors, FactorNetworks):
        chosen = _choose(factors.task_names, tasks)
        layers = {
            t: task_inference_networks(
                factors.task_factors[t],
                factors.image_shape,
                fold_batch_norm=fold_batch_norm,
            )[0]
            for t in chosen
        }
        spec = manifest_lib.input_spec(factors.image_shape)
        common = factors.common
        if fold_batch_norm:
            common = inference_common(common, factors.image_shape)
        return common, layers, spec
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


@keras.saving.register_keras_serializable(package="kfactor")
class AssembledModel(keras.Model):
    """The functional model `assemble` returns: images -> `{task: logits}`.

    A plain functional model, except that a call first checks the images'
    shape and dtype with kfactor's message (what is wrong, the fix), where
    Keras would print its input-spec text.
    """

    def __call__(self, inputs, *args, **kwargs):
        shape = getattr(inputs, "shape", None)
        dtype = getattr(inputs, "dtype", None)
        if shape is not None and dtype is not None:
            validation.check_image_signature(
                shape,
                dtype,
                self.input_shape[1:],
                f"images given to the assembled model {self.name!r}",
            )
        return super().__call__(inputs, *args, **kwargs)


def assemble(
    factors, tasks=None, verify=True, name="assembled", fold_batch_norm=True
):
    """Assembles a common factor and task factors into one Keras model.

    Args:
        factors: factors from `kfactor.load_factors` (dict or list), or a
            `kfactor.Factorizer` (its in-memory factors, inference parts
            only).
        tasks: task names to include (a list or one name); all if None.
        verify: check on the probe images that every task's output equals
            the logits its manifest recorded at save time (max |diff| <=
            `RECORDED_TOLERANCE` of their scale); for factors saved without
            them, and for a Factorizer, that it equals its standalone
            factor network's (`TOLERANCE` of its scale; see
            `verify_assembly`).
        name: the model's name.
        fold_batch_norm: with a `Factorizer`, fold each batch
            normalization of its encoders into the convolution before it
            (`kfactor.factors.folding`; 1.26-1.32x faster on the
            benchmark's assembled models on an AVX2 CPU, but for the
            ResNet-18 / MobileNetV2 factors at batch 1, 10% slower: see
            docs/PERFORMANCE.md): those layers become inference copies,
            the rest stay shared with the factorizer.
            Pass False to share every layer with a factorizer that goes
            on training. Loaded factors were folded when saved; the flag
            does not change them.

    Returns:
        A functional `keras.Model` images -> `{task: logits}`
        (`AssembledModel`: a wrong image size or dtype is refused with a
        message naming the fix).

    Raises:
        ValueError: no or several common factors, no task factor, a task
            trained on another common factor, another input spec or format
            version, an unknown task; with `verify`, a task whose output
            differs (naming it, its max |diff| and the fix).
        kfactor.validation.NonFiniteError: a weight is NaN or Inf.

    Example:

    >>> model = kfactor.assemble(kfactor.load_factors("saved_factors"),
    ...                          tasks=["shape", "scale"])  # doctest: +SKIP
    >>> sorted(model.output)                               # doctest: +SKIP
    ['scale', 'shape']
    """
    common, task_layers, spec = resolve(factors, tasks, fold_batch_norm)

    # === Functional Model ===
    images = keras.Input(shape=tuple(spec["shape"]), name="images")
    z_common = common(images)
    outputs = {
        task: layer([images, z_common]) for task, layer in task_layers.items()
    }
    model = AssembledModel(images, outputs, name=name)
    model.value_range = tuple(spec["value_range"])
    validation.check_finite_variables(model.weights, "the assembled factors")
    if verify:
        verify_assembly(model, factors)
    return model


def _recorded(layer):
    return isinstance(layer, SavedFactor) and "probe_logits" in layer.manifest


def recorded_differences(model, task_layers):
    """Max |assembled - recorded at save time| per task that recorded it.

    Args:
        model: an assembled model images -> `{task: logits}`.
        task_layers: dict task -> its `SavedFactor`; tasks whose manifest
            has no `probe_logits` are left out.

    Returns:
        `(differences, tolerances)`: dicts task -> float; a tolerance is
        `RECORDED_TOLERANCE * max(1, max |recorded logits|)`.
    """
    differences, tolerances, outputs = {}, {}, {}
    for task, layer in task_layers.items():
        if not _recorded(layer):
            continue
        probe = layer.manifest["probe_images"]
        key = (probe["num"], probe["seed"])
        if key not in outputs:
            images = manifest_lib.probe_images(layer.image_spec, *key)
            outputs[key] = model(images, training=False)
        recorded = layer.manifest["probe_logits"]
        differences[task] = checks.max_abs_diff(outputs[key][task], recorded)
        tolerances[task] = RECORDED_TOLERANCE * checks.logit_scale(recorded)
    return differences, tolerances


def verify_assembly(model, factors):
    """What `assemble(verify=True)` checks; raises `ValueError` on a gap.

    A loaded task factor whose manifest recorded `probe_logits` is checked
    against them: the assembled model must give, on the same probe images,
    the logits the in-memory factor network gave at save time, which also
    catches a factor that loads into other numbers. Factors saved before
    manifests recorded them (and a `Factorizer`'s in-memory factors) are
    compared with standalone networks built from the same layers
    (`check_assembly`, `TOLERANCE`): a weaker check, logged as a warning
    for loaded factors, that catches assembly bugs but not loading bugs.

    Args:
        model: an assembled model images -> `{task: logits}`.
        factors: the factors it was assembled from (or a `Factorizer`).

    Returns:
        dict task -> max |diff| (recorded or standalone, as checked).
    """
    task_layers = resolve(factors, list(model.output))[1]
    differences, tolerances = recorded_differences(model, task_layers)
    checks.check_within(
        differences,
        tolerances,
        "the assembled outputs to equal the logits recorded in the "
        "manifests at save time, on their probe images",
        RECORDED_FIX,
    )
    weaker = [t for t in task_layers if t not in differences]
    if weaker:
        if not isinstance(factors, FactorNetworks):
            logger.warning(
                "Task factors %s have no probe_logits in their manifests "
                "(saved by an older kfactor): verify compares them with "
                "standalone networks built from the same loaded layers, a "
                "weaker check that cannot catch a loading bug. Re-save them "
                "for the independent check.",
                weaker,
            )
        standalone, scales = _standalone_differences(model, factors)
        differences.update({t: standalone[t] for t in weaker})
        checks.check_within(
            {t: standalone[t] for t in weaker},
            {t: TOLERANCE * scales[t] for t in weaker},
            "the assembled outputs to equal the standalone factor networks'",
            "report this as a kfactor bug.",
        )
    logger.info("Assembled %s; max |diff| %s.", list(model.output), differences)
    return differences


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


def _standalone_differences(model, factors, images=None):
    """`(check_assembly's differences, {task: logit scale of the
    standalone network})` on `images` (by default the spec's probe
    images)."""
    if images is None:
        spec = resolve(factors, list(model.output))[2]
        images = manifest_lib.probe_images(spec)
    assembled = model(images, training=False)
    scales, differences = {}, {}
    for task in assembled:
        standalone = factor_network(factors, task)(images)
        scales[task] = checks.logit_scale(standalone)
        differences[task] = checks.max_abs_diff(assembled[task], standalone)
    return differences, scales


def check_assembly(model, factors, images=None):
    """Max |assembled - standalone| per task of `model`, on `images`.

    Args:
        model: an assembled model images -> `{task: logits}`.
        factors: the factors it was assembled from (or a `Factorizer`).
        images: a batch; by default 8 seeded probe images of the spec.

    Returns:
        dict task -> max absolute difference (float).
    """
    return _standalone_differences(model, factors, images)[0]


__all__ = [
    "RECORDED_FIX",
    "RECORDED_TOLERANCE",
    "TOLERANCE",
    "AssembledModel",
    "assemble",
    "check_assembly",
    "factor_network",
    "recorded_differences",
    "resolve",
    "verify_assembly",
]
