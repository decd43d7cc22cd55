"""`SavedFactor`: a factor directory loaded as a frozen Keras layer.

Loading reads only the JSON manifest and the SavedModel graph: no Python
object is unpickled and the code that defined the encoders is not needed.
The layer tracks the SavedModel's own variables (no copy), so a common factor
shared by several tasks holds its weights once.
"""

import os

from kfactor import validation
from kfactor.factors import manifest as manifest_lib

import keras
import tensorflow as tf

# Keras's safe-mode flag, as `keras.layers.TFSMLayer.from_config` reads it.
from keras.src.saving import serialization_lib

#: The endpoints each role's SavedModel must have.
ENDPOINTS = {
    manifest_lib.COMMON: ("serve",),
    manifest_lib.TASK: ("serve", "encode"),
}


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


class _RestoredVariable(keras.Variable):
    """A Keras variable around an existing `tf.Variable` (shared, no copy).

    The TensorFlow backend's `Variable._initialize` keeps a `tf.Variable`
    given to it as is; routing the initializer there makes the Keras variable
    read and write the SavedModel's own variable.
    """

    def __init__(self, variable, name, trainable):
        self._restored = variable
        super().__init__(
            initializer=lambda shape, dtype: None,
            shape=variable.shape,
            dtype=variable.dtype.name,
            trainable=trainable,
            name=name,
        )

    def _initialize_with_initializer(self, initializer):
        self._initialize(self._restored)


def _load_saved_model(directory, role):
    path = os.path.join(directory, manifest_lib.SAVED_MODEL_DIR)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise manifest_lib.FactorFormatError(
            f"Expected a SavedModel in {path}. Received: no saved_model.pb. "
            "Fix: re-save the factor with Factorizer.save_factors."
        )
    try:
        restored = tf.saved_model.load(path)
    except Exception as err:  # TF raises many types for a broken file.
        raise manifest_lib.FactorFormatError(
            f"Expected a readable SavedModel in {path}. Received: "
            f"{type(err).__name__}: {str(err)[:300]}. Fix: the artefact is "
            "corrupt; re-save or re-install the factor."
        ) from err
    missing = [e for e in ENDPOINTS[role] if not hasattr(restored, e)]
    if missing:
        raise manifest_lib.FactorFormatError(
            f"Expected the {role} factor's SavedModel {path} to have "
            f"endpoints {list(ENDPOINTS[role])}. Received: missing "
            f"{missing}. Fix: save factors with Factorizer.save_factors."
        )
    return restored


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
class SavedFactor(keras.layers.Layer):
    """A saved factor (common or task) as a frozen Keras layer.

    The common factor maps images to `z_common`; a task factor maps
    `(images, z_common)` to its logits. Use `kfactor.load_factors` to find
    factors, `kfactor.assemble` to combine them. The SavedModel holds the
    inference computation only, so `training` is ignored. A loaded common
    factor can be the `common` of a new `kfactor.Factorizer`, to train a
    new task factor against it.

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

    def __init__(self, directory, trainable=False, check_inputs=True, **kwargs):
        directory = os.path.abspath(os.fspath(directory))
        if not os.path.isdir(directory):
            raise NotADirectoryError(
                f"Expected a factor directory. Received: {directory} "
                f"({'a file' if os.path.exists(directory) else 'missing'}). "
                "Fix: pass the directory holding kfactor.json."
                + manifest_lib.recovery_hint(directory)
            )
        manifest = manifest_lib.read_manifest(directory)
        kwargs.setdefault("name", manifest["name"])
        super().__init__(trainable=trainable, **kwargs)
        self.directory = directory
        self.manifest = manifest
        self.check_inputs = bool(check_inputs)
        restored = _load_saved_model(directory, manifest["role"])
        _check_input_spec(restored, manifest, directory)
        _check_graph(restored, manifest, directory)
        variables = restored_variables(restored, ENDPOINTS[manifest["role"]])
        _check_fingerprint(variables, manifest, directory)
        self._restored = restored
        for index, variable in enumerate(variables):
            self._track_variable(
                _RestoredVariable(
                    variable, f"variable_{index}", variable.trainable
                )
            )
        self.built = True

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
                return self._restored.serve(images)
        # The values of `images` were checked by the common factor that
        # made `z_common` from them: only their shape and dtype here.
        images, z_common = inputs
        images, _ = self._checked_images(images, values=False)
        z_common = self._checked_code(z_common)
        return self._restored.serve(images, z_common)

    def encode(self, images):
        """A task factor's code mean `z_task` (images -> `[batch, dim]`)."""
        images, checks = self._checked_images(images)
        with tf.control_dependencies(checks):
            if self.role == manifest_lib.COMMON:
                return self._restored.serve(images)
            return self._restored.encode(images)

    def compute_output_shape(self, input_shape):
        if self.role == manifest_lib.COMMON:
            return (input_shape[0], self.code_dim)
        return (input_shape[0][0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "directory": self.directory,
            "check_inputs": self.check_inputs,
        }

    @classmethod
    def from_config(cls, config):
        if serialization_lib.in_safe_mode() is not False:
            raise ValueError(
                "Requested the deserialization of a SavedFactor, which loads "
                f"the SavedModel in {config.get('directory')}; its graph may "
                "run any TensorFlow op. Fix: if you trust it, call "
                "keras.config.enable_unsafe_deserialization() or pass "
                "safe_mode=False."
            )
        return cls(**config)

    def __repr__(self):
        what = self.task or self.role
        return f"<SavedFactor {what} from {self.directory}>"


__all__ = [
    "ENDPOINTS",
    "SavedFactor",
    "restored_variables",
]
