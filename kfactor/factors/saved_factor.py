"""`SavedFactor`: a factor directory loaded as a frozen Keras layer.

Loading reads only the JSON manifest and the SavedModel graph: no Python
object is unpickled and the code that defined the encoders is not needed.
`SavedFactor` is a `keras.layers.TFSMLayer`, whose weights are the
SavedModel's own `tf.Variable`s (no copy), so a common factor shared by
several tasks holds its weights once.
"""

import os

from kfactor import keras_internals
from kfactor import validation
from kfactor.factors import atomic
from kfactor.factors import graph_check
from kfactor.factors import manifest as manifest_lib

import keras
import tensorflow as tf

#: The endpoints each role's SavedModel must have.
ENDPOINTS = {
    manifest_lib.COMMON: ("serve",),
    manifest_lib.TASK: ("serve", "encode"),
}
#: `TFSMLayer.get_config` keys that `SavedFactor` derives from `directory`.
_TFSM_CONFIG_KEYS = ("filepath", "call_endpoint", "call_training_endpoint")


def restored_variables(restored, endpoints):
    """The variables the named endpoints of a loaded SavedModel read."""
    seen, variables = set(), []
    for name in endpoints:
        for function in getattr(restored, name).concrete_functions:
            for variable in function.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    variables.append(variable)
    return variables


def saved_model_path(directory):
    """`directory/saved_model`; raises unless it holds a `saved_model.pb`."""
    path = os.path.join(directory, manifest_lib.SAVED_MODEL_DIR)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise manifest_lib.FactorFormatError(
            f"Expected a SavedModel in {path}. Received: no saved_model.pb. "
            "Fix: re-save the factor with Factorizer.save_factors."
        )
    return path


def _unreadable(path, err):
    return manifest_lib.FactorFormatError(
        f"Expected a readable SavedModel with a 'serve' endpoint in {path}. "
        f"Received: {type(err).__name__}: {str(err)[:300]}. Fix: the "
        "artefact is corrupt; re-save or re-install the factor."
    )


def _check_endpoints(restored, role, path):
    missing = [e for e in ENDPOINTS[role] if not hasattr(restored, e)]
    if missing:
        raise manifest_lib.FactorFormatError(
            f"Expected the {role} factor's SavedModel {path} to have "
            f"endpoints {list(ENDPOINTS[role])}. Received: missing "
            f"{missing}. Fix: save factors with Factorizer.save_factors."
        )


def _check_fingerprint(variables, manifest, directory):
    fingerprint = manifest_lib.weights_fingerprint(variables)
    if fingerprint != manifest["weights_fingerprint"]:
        raise manifest_lib.FactorFormatError(
            f"Expected the weights of {directory} to match its manifest's "
            f"weights_fingerprint {manifest['weights_fingerprint']}. "
            f"Received: {fingerprint}. Fix: the SavedModel or manifest was "
            "changed or is corrupt; re-save the factor."
        )


def _check_input_spec(restored, manifest, directory):
    signature = restored.serve.concrete_functions[0].structured_input_signature
    images = signature[0][0] if signature[0] else signature[1]["images"]
    expected = manifest["input_spec"]["shape"]
    if list(images.shape[1:]) != expected:
        raise manifest_lib.FactorFormatError(
            f"Expected the SavedModel of {directory} to take images shaped "
            f"{expected} (its manifest's input_spec). Received: "
            f"{list(images.shape[1:])}. Fix: re-save the factor."
        )


def _graph_mismatch(directory, key, manifest_value, graph_value):
    return manifest_lib.FactorFormatError(
        f"Expected the manifest of {directory} to describe its SavedModel. "
        f"Received: {key}={manifest_value!r} in the manifest, but the graph "
        f"has {key}={graph_value!r}. Fix: the manifest was edited or "
        "belongs to another factor; re-save the factor with save_factors."
    )


def _check_graph(restored, manifest, directory):
    """Checks the manifest's role, code_dim and num_classes on the graph."""
    role = manifest["role"]
    graph_role = (
        manifest_lib.TASK
        if hasattr(restored, "encode")
        else manifest_lib.COMMON
    )
    if graph_role != role:
        raise _graph_mismatch(directory, "role", role, graph_role)
    serve = restored.serve.concrete_functions[0]
    output_dim = serve.structured_outputs.shape[-1]
    if role == manifest_lib.COMMON:
        if output_dim != manifest["code_dim"]:
            raise _graph_mismatch(
                directory, "code_dim", manifest["code_dim"], output_dim
            )
        return
    args, kwargs = serve.structured_input_signature
    z_common = args[1] if len(args) > 1 else kwargs["z_common"]
    if z_common.shape[-1] != manifest["code_dim"]:
        raise _graph_mismatch(
            directory, "code_dim", manifest["code_dim"], z_common.shape[-1]
        )
    if output_dim != manifest["num_classes"]:
        raise _graph_mismatch(
            directory, "num_classes", manifest["num_classes"], output_dim
        )


@keras.saving.register_keras_serializable(package="kfactor")
class SavedFactor(keras.layers.TFSMLayer):
    """A saved factor (common or task) as a frozen Keras layer.

    The common factor maps images to `z_common`; a task factor maps
    `(images, z_common)` to its logits. Use `kfactor.load_factors` to find
    factors, `kfactor.assemble` to combine them. The SavedModel holds the
    inference computation only, so `training` is ignored. A loaded common
    factor can be the `common` of a new `kfactor.Factorizer`, to train a
    new task factor against it.

    It is a `keras.layers.TFSMLayer` on the factor's SavedModel: its
    weights are the SavedModel's own variables (shared, not copied), and
    rebuilding one from a Keras config needs
    `keras.config.enable_unsafe_deserialization()` (`TFSMLayer.from_config`),
    as the graph may run any TensorFlow op.

    On load the manifest's role, `code_dim` and `num_classes` are checked
    against the SavedModel's graph. Each call checks its images: shaped
    `[batch, *input_spec.shape]`, float (float64 is cast to float32; uint8
    is refused: scale it to the value range first), and, for the common
    factor and `encode`, finite and within the manifest's `value_range`
    (and the margin of `kfactor.validation`); a task factor's call trusts
    the common factor that made its `z_common` from the same images.

    Args:
        directory: a factor directory (`kfactor.json` + `saved_model/`).
        trainable: whether the weights may be trained (default frozen).
        check_inputs: run the value checks of the images on every call
            (finite, in range); the shape and dtype are always checked.
        name: the layer's name; by default the manifest's `name`.
        dtype: the layer's dtype policy (as for any Keras layer).
        allow_ops: op names allowed in the graph beyond
            `kfactor.factors.graph_check.ALLOWED_OPS`.
        trust_factor: skip the graph's op check (for a factor you made or
            trust). By default, before the SavedModel is loaded, every
            function of its graph is checked against the allowlist and a
            factor with any other op (file, network, process ops) is
            refused with `kfactor.factors.graph_check.UntrustedFactorError`.

    Attributes:
        manifest: the validated manifest (dict).
        role, task, num_classes, code_dim, weights_fingerprint,
        common_fingerprint: the manifest's fields; `image_spec` is its
            `input_spec` (`input_spec` is a Keras attribute).

    Example:

    >>> common = SavedFactor("saved_factors/dsprites/common")  # doctest: +SKIP
    >>> common(np.zeros((2, 64, 64, 1), "float32")).shape       # doctest: +SKIP
    TensorShape([2, 10])
    """

    def __init__(
        self,
        directory,
        trainable=False,
        check_inputs=True,
        name=None,
        dtype=None,
        allow_ops=(),
        trust_factor=False,
    ):
        directory = os.path.abspath(os.fspath(directory))
        atomic.recover_for_reading(directory)
        if not os.path.isdir(directory):
            raise NotADirectoryError(
                f"Expected a factor directory. Received: {directory} "
                f"({'a file' if os.path.exists(directory) else 'missing'}). "
                "Fix: pass the directory holding kfactor.json."
                + manifest_lib.recovery_hint(directory)
            )
        manifest = manifest_lib.read_manifest(directory)
        path = saved_model_path(directory)
        graph_check.check_factor_graph(directory, allow_ops, trust_factor)
        try:
            super().__init__(
                path,
                call_endpoint="serve",
                trainable=trainable,
                name=name or manifest["name"],
                dtype=dtype,
            )
        except Exception as err:  # TF raises many types for a broken file.
            raise _unreadable(path, err) from err
        self._saved_model = keras_internals.saved_model_of(self)
        self.directory = directory
        self.manifest = manifest
        self.check_inputs = bool(check_inputs)
        self.allow_ops = list(allow_ops)
        self.trust_factor = bool(trust_factor)
        self._check_restored(path)

    def _check_restored(self, path):
        """The manifest's checks on the loaded SavedModel (module doc)."""
        restored, manifest = self._saved_model, self.manifest
        _check_endpoints(restored, manifest["role"], path)
        _check_input_spec(restored, manifest, self.directory)
        _check_graph(restored, manifest, self.directory)
        variables = restored_variables(restored, ENDPOINTS[manifest["role"]])
        _check_fingerprint(variables, manifest, self.directory)
        held = {id(w.value) for w in self.weights}
        if any(id(v) not in held for v in variables):
            raise manifest_lib.FactorFormatError(
                f"Expected the 'encode' endpoint of {path} to read only "
                "variables that 'serve' reads. Received: others. Fix: "
                "re-save the factor with Factorizer.save_factors."
            )

    # === Manifest fields ===

    role = property(lambda self: self.manifest["role"])
    task = property(lambda self: self.manifest["task"])
    num_classes = property(lambda self: self.manifest["num_classes"])
    code_dim = property(lambda self: self.manifest["code_dim"])
    image_spec = property(lambda self: self.manifest["input_spec"])
    weights_fingerprint = property(
        lambda self: self.manifest["weights_fingerprint"]
    )
    common_fingerprint = property(
        lambda self: self.manifest["common_fingerprint"]
    )

    # === Layer ===

    def _checked_images(self, images, values=True):
        """`images` as float32 after the checks; and the value checks."""
        where = f"images given to factor {self.name!r}"
        images = tf.convert_to_tensor(images)
        validation.check_image_signature(
            images.shape, images.dtype, self.image_spec["shape"], where
        )
        images = tf.cast(images, self.image_spec["dtype"])
        if not (self.check_inputs and values):
            return images, []
        checks = [
            validation.assert_finite_images(images, where),
            validation.assert_images_in_range(
                images, self.image_spec["value_range"], where
            ),
        ]
        return images, [c for c in checks if c is not None]

    def _checked_code(self, z_common):
        z_common = tf.cast(z_common, "float32")
        if z_common.shape.rank != 2 or z_common.shape[-1] not in (
            None,
            self.code_dim,
        ):
            raise ValueError(
                f"Expected z_common shaped [batch, {self.code_dim}] for task "
                f"factor {self.task!r}. Received: shape "
                f"{z_common.shape.as_list()}. Fix: pass the output of the "
                "common factor saved with this task."
            )
        return z_common

    def call(self, inputs, training=None):
        if self.role == manifest_lib.COMMON:
            images, checks = self._checked_images(inputs)
            with tf.control_dependencies(checks):
                return self.call_endpoint_fn(images)
        # The values of `images` were checked by the common factor that
        # made `z_common` from them: only their shape and dtype here.
        images, z_common = inputs
        images, _ = self._checked_images(images, values=False)
        z_common = self._checked_code(z_common)
        return self.call_endpoint_fn(images, z_common)

    def encode(self, images):
        """A task factor's code mean `z_task` (images -> `[batch, dim]`)."""
        images, checks = self._checked_images(images)
        with tf.control_dependencies(checks):
            if self.role == manifest_lib.COMMON:
                return self.call_endpoint_fn(images)
            return self._saved_model.encode(images)

    def compute_output_shape(self, input_shape):
        if self.role == manifest_lib.COMMON:
            return (input_shape[0], self.code_dim)
        return (input_shape[0][0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        for key in _TFSM_CONFIG_KEYS:
            config.pop(key)
        return {
            **config,
            "directory": self.directory,
            "check_inputs": self.check_inputs,
            "allow_ops": self.allow_ops,
            "trust_factor": self.trust_factor,
        }

    # `from_config` is `TFSMLayer`'s: it refuses in safe mode, then calls
    # `SavedFactor(**config)`, which checks the artefact again.

    def __repr__(self):
        what = self.task or self.role
        return f"<SavedFactor {what} from {self.directory}>"


__all__ = [
    "ENDPOINTS",
    "SavedFactor",
    "restored_variables",
    "saved_model_path",
]
