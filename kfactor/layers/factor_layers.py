"""Factor layers: the common factor, task factors and the InfoMax projection.

A factor network for task k is `Head_k(z_common + z_task_k)`, where `z_common`
comes from the one `CommonFactor` shared by every task and `z_task_k` from the
task's own `TaskFactor` encoder.
"""

import collections

from kfactor.layers.heads import classification_head

import keras
from keras import ops

TaskCode = collections.namedtuple("TaskCode", ["sample", "mean", "log_var"])
TaskCode.__doc__ = """A task factor's code.

`sample` is the code the heads see (reparameterised in training, the mean at
inference); `mean` and `log_var` parameterise the Gaussian posterior
(`log_var` is `None` for a deterministic factor).
"""


def _check_encoder(encoder, argument):
    if not isinstance(encoder, keras.layers.Layer):
        raise TypeError(
            f"Expected {argument} to be a Keras model or layer mapping images "
            f"to a vector. Received: {argument}={encoder!r} "
            f"(type {type(encoder).__name__})"
        )


def _check_positive_int(value, argument):
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(
            f"Expected {argument} to be a positive int or None. "
            f"Received: {argument}={value!r}"
        )


@keras.saving.register_keras_serializable(package="kfactor")
class ProjectionMLP(keras.layers.Layer):
    """Projects teacher features to the common factor's width for InfoMax.

    `Dense -> BatchNormalization -> ReLU -> Dense`, the reference's `feat_fcs`
    (BatchNorm with PyTorch's momentum 0.1 and epsilon 1e-5, synchronized
    across replicas).

    Args:
        units: output width (the common feature's width).

    Example:

    >>> projection = ProjectionMLP(10)
    >>> projection(np.ones((4, 3))).shape
    (4, 10)
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int(units, "units")
        self.units = units
        self.hidden = keras.layers.Dense(units, name="hidden")
        # Synchronized: under tf.distribute the batch statistics are those
        # of the global batch, as on one device.
        self.norm = keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, synchronized=True, name="norm"
        )
        self.out = keras.layers.Dense(units, name="out")

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.norm.build((*input_shape[:-1], self.units))
        self.out.build((*input_shape[:-1], self.units))

    def call(self, inputs, training=None):
        x = self.norm(self.hidden(inputs), training=training)
        return self.out(ops.relu(x))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="kfactor")
class CommonFactor(keras.layers.Layer):
    """The common-knowledge network (CKN), shared by every task factor.

    Args:
        encoder: a Keras model or layer mapping images to a `[batch, dim]`
            code.

    Example:

    >>> common = CommonFactor(simple_conv64(widths=NARROW_WIDTHS))
    >>> common(np.zeros((2, 64, 64, 1))).shape
    (2, 10)
    """

    def __init__(self, encoder, **kwargs):
        kwargs.setdefault("name", "common")
        super().__init__(**kwargs)
        _check_encoder(encoder, "encoder")
        self.encoder = encoder

    def build(self, input_shape):
        if not self.encoder.built:
            self.encoder.build(input_shape)

    def call(self, images, training=None):
        return self.encoder(images, training=training)

    def compute_output_shape(self, input_shape):
        return self.encoder.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(
            config["encoder"]
        )
        return cls(**config)


@keras.saving.register_keras_serializable(package="kfactor")
class TaskFactor(keras.layers.Layer):
    """A task-specific network (TSN) with its classification heads.

    The encoder's features go through a linear code layer to a `code_dim`
    code; a variational factor predicts a Gaussian (mean, log-variance) and
    samples `z = mean + eps * exp(log_var / 2)` in training, and uses the mean
    at inference so that factor networks are deterministic and assemble
    exactly. `head` classifies `z_common + z_task`; `aux_head` classifies
    `z_task` alone and is used only in training.

    `num_classes` and `code_dim` may be left `None`: `kfactor.Factorizer`
    infers them from the teacher and the common factor.

    Args:
        encoder: a Keras model or layer mapping images to `[batch, features]`.
        num_classes: number of classes of the task.
        code_dim: size of the task code; must equal the common code's size.
        variational: Gaussian code (True) or deterministic code (False).
        initial_log_var: for a variational factor, the initial
            log-variance of the code (the bias of its log-variance half;
            the kernel starts as usual). `None` leaves the bias at 0, i.e.
            sigma = 1 at the start, which with five tasks drowned the code
            in noise before it learned `shape`; -6 starts with sigma = 0.05
            and lets the bottleneck (`InfoMinLoss`) raise it.
        seed: seed of the reparameterisation noise.

    Call arguments:
        inputs: `(images, z_common)`.
        training: sample the code (True) or use its mean.

    Returns:
        The task logits `head(z_common + z_task)`.

    Example:

    >>> factor = TaskFactor(simple_conv64(None, widths=NARROW_WIDTHS),
    ...                     num_classes=3, code_dim=10)
    >>> factor((np.zeros((2, 64, 64, 1)), np.zeros((2, 10)))).shape
    (2, 3)
    """

    def __init__(
        self,
        encoder,
        num_classes=None,
        code_dim=None,
        variational=True,
        initial_log_var=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if initial_log_var is not None:
            if not variational:
                raise ValueError(
                    "initial_log_var applies to variational task factors "
                    f"only. Received: initial_log_var={initial_log_var}, "
                    "variational=False. Fix: pass variational=True or drop "
                    "initial_log_var."
                )
            if not isinstance(initial_log_var, (int, float)) or not (
                -20.0 <= initial_log_var <= 5.0
            ):
                raise ValueError(
                    "Expected initial_log_var as a number in [-20, 5]. "
                    f"Received: initial_log_var={initial_log_var!r}"
                )
            initial_log_var = float(initial_log_var)
        self.initial_log_var = initial_log_var
        _check_encoder(encoder, "encoder")
        _check_positive_int(num_classes, "num_classes")
        _check_positive_int(code_dim, "code_dim")
        self.encoder = encoder
        self.num_classes = num_classes
        self.code_dim = code_dim
        self.variational = bool(variational)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._maybe_create_layers()

    def resolve_sizes(self, num_classes, code_dim):
        """Fills in `num_classes`/`code_dim` left `None`; checks the others."""
        for argument, given, inferred in (
            ("num_classes", self.num_classes, num_classes),
            ("code_dim", self.code_dim, code_dim),
        ):
            if given is not None and given != inferred:
                raise ValueError(
                    f"TaskFactor '{self.name}' has {argument}={given}, but "
                    f"the teacher and common factor need {inferred}. Fix: "
                    f"pass {argument}={inferred} or leave it None."
                )
        self.num_classes, self.code_dim = num_classes, code_dim
        self._maybe_create_layers()

    def _maybe_create_layers(self):
        if self.num_classes is None or self.code_dim is None:
            return
        if hasattr(self, "code_layer"):
            return
        code_units = 2 * self.code_dim if self.variational else self.code_dim
        self.code_layer = keras.layers.Dense(code_units, name="code")
        self.head = classification_head(self.num_classes, name="head")
        self.aux_head = classification_head(self.num_classes, name="aux_head")

    def _require_sizes(self):
        if not hasattr(self, "code_layer"):
            raise ValueError(
                f"TaskFactor '{self.name}' does not know its sizes yet. "
                f"Received: num_classes={self.num_classes}, "
                f"code_dim={self.code_dim}. Fix: pass both, or let "
                "kfactor.Factorizer infer them."
            )

    def build(self, input_shape):
        self._require_sizes()
        images_shape = input_shape[0]
        if not self.encoder.built:
            self.encoder.build(images_shape)
        features_shape = self.encoder.compute_output_shape(images_shape)
        self.code_layer.build(features_shape)
        if self.initial_log_var is not None:
            self.code_layer.bias.assign(
                ops.concatenate(
                    [
                        ops.zeros((self.code_dim,)),
                        ops.full((self.code_dim,), self.initial_log_var),
                    ]
                )
            )
        code_shape = (images_shape[0], self.code_dim)
        self.head.build(code_shape)
        self.aux_head.build(code_shape)

    def encode(self, images, training=None):
        """Returns the `TaskCode` of `images`."""
        self._require_sizes()
        code = self.code_layer(self.encoder(images, training=training))
        if not self.variational:
            return TaskCode(code, code, None)
        mean, log_var = ops.split(code, 2, axis=-1)
        if not training:
            return TaskCode(mean, mean, log_var)
        noise = keras.random.normal(
            ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator
        )
        sample = mean + noise * ops.exp(0.5 * log_var)
        return TaskCode(sample, mean, log_var)

    def call(self, inputs, training=None):
        images, z_common = inputs
        z_task = self.encode(images, training=training).sample
        return self.head(z_common + z_task)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "code_dim": self.code_dim,
            "variational": self.variational,
            "initial_log_var": self.initial_log_var,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(
            config["encoder"]
        )
        return cls(**config)


__all__ = [
    "CommonFactor",
    "ProjectionMLP",
    "TaskCode",
    "TaskFactor",
]
