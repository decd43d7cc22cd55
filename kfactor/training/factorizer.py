"""`Factorizer`: trains factor networks from a frozen teacher with `fit`.

```python
factorizer = kfactor.Factorizer(teacher, common=encoder, tasks=encoders)
factorizer.compile(optimizer=keras.optimizers.Adam(1e-3))
factorizer.fit(train_ds, validation_data=test_ds, epochs=3)
network = factorizer.factor_network("shape")   # images -> logits
```
"""

import inspect

from kfactor import validation
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.networks import FactorNetworks
from kfactor.layers.factor_layers import CommonFactor
from kfactor.layers.factor_layers import ProjectionMLP
from kfactor.layers.factor_layers import TaskFactor
from kfactor.layers.features import TeacherReader
from kfactor.layers.features import feature_model
from kfactor.layers.features import flatten_feature
from kfactor.layers.features import probe_teacher
from kfactor.objective import health
from kfactor.objective import losses as losses_lib

import keras
import tensorflow as tf
from keras import ops


def _image_shape(teacher, common):
    for model in (teacher, common):
        shape = getattr(model, "input_shape", None)
        if (
            isinstance(shape, tuple)
            and len(shape) > 1
            and None not in shape[1:]
        ):
            return tuple(shape[1:])
    raise ValueError(
        "Cannot tell the image shape: neither the teacher nor the common "
        "encoder has a fixed input shape. Fix: build them with "
        "keras.Input(shape=(height, width, channels))."
    )


def _as_task_factor(task, model):
    if isinstance(model, TaskFactor):
        return model
    return TaskFactor(model, name=f"task_{task}")


def _check_tasks(tasks, teacher_classes):
    if not isinstance(tasks, dict) or not tasks:
        raise ValueError(
            "Expected tasks as a non-empty dict task name -> Keras model (or "
            f"TaskFactor). Received: tasks={tasks!r}"
        )
    unknown = sorted(set(tasks) - set(teacher_classes))
    if unknown:
        raise ValueError(
            f"tasks {unknown} are not outputs of the teacher. The teacher "
            f"outputs: {sorted(teacher_classes)}. Fix: name each task like "
            "the teacher's output it factorizes."
        )


def _check_value_range(value_range):
    if value_range is None:
        return None
    low, high = manifest_lib.input_spec((1,), value_range)["value_range"]
    return (low, high)


def _iterations(optimizer):
    """The optimizer's step count (also a MirroredVariable's)."""
    return int(tf.convert_to_tensor(optimizer.iterations).numpy())


def _epochs_to_run(x, y, args, kwargs):
    """How many epochs a `keras.Model.fit(x, y, *args, **kwargs)` asks for."""
    bound = inspect.signature(keras.Model.fit).bind(None, x, y, *args, **kwargs)
    bound.apply_defaults()
    return bound.arguments["epochs"] - bound.arguments["initial_epoch"]


@keras.saving.register_keras_serializable(package="kfactor")
class Factorizer(FactorNetworks, keras.Model):
    """Factorizes a frozen teacher into a common factor and task factors.

    Training minimises the InfoMax-Bottleneck objective
    (`kfactor.objective.losses`): InfoMax between the projected teacher feature
    and the common feature, a variational bottleneck on each task code, KD from
    the teacher's logits, and CE of each factor network and of each task code's
    auxiliary head. `fit` logs the total, every weighted term (`<term>_loss`),
    each factor network's accuracy (`<task>_accuracy`) and the factorization's
    health (`kfactor.objective.health`): the common code's mean pairwise cosine
    (`common_cosine`, near 1 when it collapsed) and participation ratio
    (`common_participation_ratio`, its effective dimensions), and each task
    code's bottleneck size in nats (`<task>_kl`). Add
    `kfactor.CommonCollapseMonitor()` to the callbacks to be warned when the
    common code collapses.

    Args:
        teacher: Keras model images -> `{task: logits}`; frozen here
            (`teacher.trainable` is set to False) and never updated.
        common: Keras model or layer images -> `[batch, code_dim]`, or a
            `CommonFactor`.
        tasks: dict task -> Keras model or layer images -> features, or a
            `TaskFactor`. Each key must be a teacher output; code sizes and
            class counts are inferred.
        losses: list of `kfactor.objective.losses.FactorLoss`; by default
            `imb_objective(**objective_options)`.
        weight_decay: coupled L2 weight decay added to every trainable
            gradient (`g + wd * w`, as PyTorch's `Adam(weight_decay)` of the
            reference; 1e-4 there). 0 disables it.
        teacher_features: `"auto"` or a list of teacher layer names that
            InfoMax pairs with `common_features` (one projection a level).
        common_features: list of the common encoder's layer names, as long as
            `teacher_features`; `None` pairs with the common code.
        value_range: `(low, high)` of the images (the teacher's input);
            batches far outside it are refused (`kfactor.validation`), and
            `save_factors` records it. None: no range check.
        check_batches: check every batch in the step: finite images in
            `value_range`, labels in `[0, num_classes)` (`tf.debugging`
            asserts: no measurable cost on CPU; XLA drops them).
        stop_on_nonfinite_loss: stop `fit` with a
            `kfactor.validation.NonFiniteError` naming the loss term that
            became NaN or Inf, before that step's update. False: train on
            (as Keras does without `TerminateOnNaN`).
        **objective_options: arguments of
        `kfactor.objective.losses.imb_objective`
            (e.g. `beta=1e-3`, `infomax_estimator="infonce"`); a misspelt
            one is a `TypeError` naming the nearest valid option.

    Example:

    >>> teacher = multitask_teacher({"shape": 3},
    ...     encoder=simple_conv64(widths=NARROW_WIDTHS))
    >>> factorizer = Factorizer(
    ...     teacher, common=simple_conv64(widths=NARROW_WIDTHS),
    ...     tasks={"shape": simple_conv64(None, widths=NARROW_WIDTHS)})
    >>> factorizer.task_names
    ('shape',)
    """

    def __init__(
        self,
        teacher,
        common,
        tasks,
        losses=None,
        weight_decay=1e-4,
        teacher_features="auto",
        common_features=None,
        value_range=manifest_lib.DEFAULT_VALUE_RANGE,
        check_batches=True,
        stop_on_nonfinite_loss=True,
        name="factorizer",
        **objective_options,
    ):
        objective_options.pop("trainable", None)
        super().__init__(name=name)
        if not isinstance(teacher, keras.Model):
            raise TypeError(
                "Expected teacher to be a keras.Model mapping images to "
                f"{{task: logits}}. Received: {type(teacher).__name__}"
            )
        self.image_shape = _image_shape(teacher, common)
        teacher_classes = probe_teacher(teacher, self.image_shape)
        _check_tasks(tasks, teacher_classes)
        teacher.trainable = False
        self.teacher = teacher
        self.common = (
            common if isinstance(common, CommonFactor) else CommonFactor(common)
        )
        self.common.build((None, *self.image_shape))
        self.code_dim = int(
            self.common.compute_output_shape((None, *self.image_shape))[-1]
        )
        self.task_names = tuple(tasks)
        self.num_classes = {t: teacher_classes[t] for t in self.task_names}
        self.task_factors = {}
        for task in self.task_names:
            factor = _as_task_factor(task, tasks[task])
            factor.resolve_sizes(self.num_classes[task], self.code_dim)
            factor.build(((None, *self.image_shape), (None, self.code_dim)))
            self.task_factors[task] = factor
        self.weight_decay = float(weight_decay)
        self.value_range = _check_value_range(value_range)
        self.check_batches = bool(check_batches)
        self.stop_on_nonfinite_loss = bool(stop_on_nonfinite_loss)
        self._fit_failed = False
        self._init_infomax_features(teacher_features, common_features)
        self._init_objective(losses, objective_options)
        self._init_metrics()
        self.built = True

    # === Construction ===

    def _init_infomax_features(self, teacher_features, common_features):
        self.teacher_features = teacher_features
        self.common_features = common_features
        self.teacher_reader = TeacherReader(self.teacher, teacher_features)
        levels = 1 if teacher_features == "auto" else len(teacher_features)
        if common_features is None:
            if levels != 1:
                raise ValueError(
                    f"teacher_features names {levels} layers, so "
                    "common_features must name as many common layers. "
                    "Received: common_features=None"
                )
            self.common_reader = None
        else:
            if len(common_features) != levels:
                raise ValueError(
                    "Expected as many common_features as teacher_features. "
                    f"Received: teacher_features={teacher_features}, "
                    f"common_features={common_features}"
                )
            self.common_reader = feature_model(
                self.common.encoder, common_features, "common_reader"
            )
        probe = ops.zeros((2, *self.image_shape))
        _, teacher_feats = self.teacher_reader(probe)
        _, common_feats = self._common_forward(probe, training=False)
        self.projections = []
        for level, (t_feat, c_feat) in enumerate(
            zip(teacher_feats, common_feats)
        ):
            projection = ProjectionMLP(
                int(c_feat.shape[-1]), name=f"infomax_projection_{level}"
            )
            projection.build(tuple(t_feat.shape))
            self.projections.append(projection)

    def _init_objective(self, losses, objective_options):
        if losses is None:
            validation.check_options(
                objective_options,
                inspect.signature(losses_lib.imb_objective).parameters,
                "objective option (kfactor.imb_objective argument)",
            )
            losses = losses_lib.imb_objective(**objective_options)
        elif objective_options:
            raise ValueError(
                "Pass either losses=[...] or objective options, not both. "
                f"Received options: {sorted(objective_options)}"
            )
        names = [loss.name for loss in losses]
        if len(set(names)) != len(names):
            raise ValueError(
                f"Expected one loss per term name. Received names: {names}"
            )
        for loss in losses:
            if not isinstance(loss, losses_lib.FactorLoss):
                raise TypeError(
                    "Expected kfactor.objective.losses.FactorLoss objects. "
                    "Received: "
                    f"{loss!r}"
                )
            loss.validate(self)
        self.factor_losses = list(losses)

    def _init_metrics(self):
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = {
            loss.name: keras.metrics.Mean(name=f"{loss.name}_loss")
            for loss in self.factor_losses
        }
        self.accuracy_trackers = {
            task: keras.metrics.SparseCategoricalAccuracy(
                name=f"{task}_accuracy"
            )
            for task in self.task_names
        }
        # Health of the factorization (see `kfactor.objective.health`): is the
        # common code alive, and how many nats each task code keeps.
        self.health_trackers = {
            "common_cosine": keras.metrics.Mean(name="common_cosine"),
            "common_participation_ratio": keras.metrics.Mean(
                name="common_participation_ratio"
            ),
            **{
                f"{task}_kl": keras.metrics.Mean(name=f"{task}_kl")
                for task in self.task_names
            },
        }

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            *self.term_trackers.values(),
            *self.accuracy_trackers.values(),
            *self.health_trackers.values(),
        ]

    def compile(self, optimizer=None, jit_compile="auto", **kwargs):
        """Like `keras.Model.compile`; `optimizer` defaults to Adam(1e-3).

        `jit_compile="auto"` uses XLA only on GPUs: measured on 2-core CPUs,
        XLA made the factorization step slower.
        """
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        if jit_compile == "auto":
            jit_compile = bool(tf.config.list_logical_devices("GPU"))
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    # === Training ===

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, with kfactor's checks of the data.

        Before training it checks the structure, shapes and dtypes of `x`
        (a dataset's `element_spec`) and of `validation_data`; a failed
        in-step check is raised as the `ValueError` (or
        `kfactor.validation.NonFiniteError`) it describes; a dataset that
        yields no batch is a `ValueError`. After a failed `fit`, the next
        one traces its step afresh.
        """
        validation.check_fit_inputs(x, y, self.image_shape, self.task_names)
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, tf.data.Dataset):
            validation.check_element_spec(
                validation_data, self.image_shape, self.task_names
            )
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            # Built here, eagerly, not inside the first traced step (whose
            # failure would leave half-made optimizer variables).
            with self.distribute_strategy.scope():
                optimizer.build(self.trainable_variables)
        steps = None if optimizer is None else _iterations(optimizer)
        history = self._run_checked(super().fit, x, y, *args, **kwargs)
        if (
            steps is not None
            and _iterations(self.optimizer) == steps
            and _epochs_to_run(x, y, args, kwargs)
        ):
            raise ValueError(
                "Expected the training data to yield at least one batch. "
                "Received: none (an empty dataset, or one already "
                "exhausted). Fix: check the data source, or repeat() it and "
                "pass steps_per_epoch."
            )
        return history

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, raising failed checks as kfactor errors."""
        return self._run_checked(super().evaluate, x, y, *args, **kwargs)

    def _run_checked(self, method, *args, **kwargs):
        if self._fit_failed:
            # A step that failed while being traced leaves a tf.function
            # that refuses to create variables: trace new ones.
            self.make_train_function(force=True)
            self.make_test_function(force=True)
            self._fit_failed = False
        try:
            return method(*args, **kwargs)
        except tf.errors.InvalidArgumentError as err:
            # Raised while running: the traced step itself is sound.
            translated = validation.translate_error(err)
            if translated is None:
                raise
            raise translated from err
        except Exception:
            self._fit_failed = True
            raise

    # === Forward pass ===

    def _check_images(self, images):
        validation.check_image_signature(
            images.shape, images.dtype, self.image_shape
        )

    def _check_labels(self, labels):
        validation.check_label_signature(labels, self.task_names)

    def _batch_assertions(self, images, labels):
        """The value checks of one batch (`check_batches`)."""
        if not self.check_batches:
            return []
        checks = [validation.assert_finite_images(images)]
        if self.value_range is not None:
            checks.append(
                validation.assert_images_in_range(images, self.value_range)
            )
        for task in self.task_names:
            checks.append(
                validation.assert_labels_in_range(
                    labels[task], self.num_classes[task], task
                )
            )
        return [c for c in checks if c is not None]

    def _loss_assertions(self, total, terms, after):
        """Checks that every loss term is finite, after the batch checks."""
        if not self.stop_on_nonfinite_loss:
            return []
        with tf.control_dependencies(after):
            checks = validation.assert_finite_terms(
                {**terms, "loss (total)": total}
            )
        return [c for c in checks if c is not None]

    def _common_forward(self, images, training):
        if self.common_reader is None:
            code = self.common(images, training=training)
            return code, [code]
        code, features = self.common_reader(images, training=training)
        return code, [flatten_feature(f) for f in features]

    def _forward(self, images, training):
        teacher_logits, teacher_features = self.teacher_reader(images)
        common_code, common_features = self._common_forward(images, training)
        task_codes, logits, aux_logits = {}, {}, {}
        for task, factor in self.task_factors.items():
            code = factor.encode(images, training=training)
            task_codes[task] = code
            logits[task] = factor.head(common_code + code.sample)
            aux_logits[task] = factor.aux_head(code.sample)
        projected = [
            projection(feature, training=training)
            for projection, feature in zip(self.projections, teacher_features)
        ]
        return losses_lib.FactorOutputs(
            teacher_logits={t: teacher_logits[t] for t in self.task_names},
            teacher_features=projected,
            common_features=common_features,
            common_code=common_code,
            task_codes=task_codes,
            logits=logits,
            aux_logits=aux_logits,
        )

    def _forward_and_losses(self, data, training):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._check_images(images)
        self._check_labels(labels)
        checks = self._batch_assertions(images, labels)
        outputs = self._forward(images, training=training)
        total, terms = losses_lib.total_loss(
            self.factor_losses, outputs, labels
        )
        checks += self._loss_assertions(total, terms, checks)
        return total, terms, outputs, labels, checks

    def _update_metrics(self, total, terms, outputs, labels):
        self.loss_tracker.update_state(total)
        for name, tracker in self.term_trackers.items():
            tracker.update_state(terms[f"{name}_loss"])
        for task, tracker in self.accuracy_trackers.items():
            tracker.update_state(labels[task], outputs.logits[task])
        # Over the global batch (as the batch-level loss terms): the
        # cosine and participation ratio are not means over examples.
        common = losses_lib.gather_replicas(
            ops.stop_gradient(outputs.common_code)
        )
        self.health_trackers["common_cosine"].update_state(
            health.mean_pairwise_cosine(common)
        )
        self.health_trackers["common_participation_ratio"].update_state(
            health.participation_ratio(common)
        )
        for task, code in outputs.task_codes.items():
            self.health_trackers[f"{task}_kl"].update_state(
                ops.stop_gradient(health.task_code_kl(code))
            )
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            total, terms, outputs, labels, checks = self._forward_and_losses(
                data, training=True
            )
            scaled = self.optimizer.scale_loss(total / replicas)
        # Variables no loss term reaches (e.g. the InfoMax projection when
        # InfoMax is off) have no gradient: leave them out.
        pairs = [
            (g, v)
            for g, v in zip(
                tape.gradient(scaled, self.trainable_variables),
                self.trainable_variables,
            )
            if g is not None
        ]
        if self.weight_decay:
            pairs = [
                (g + self.weight_decay * ops.cast(v, g.dtype), v)
                for g, v in pairs
            ]
        # No update unless the batch and the loss passed their checks.
        with tf.control_dependencies(checks):
            self.optimizer.apply(*zip(*pairs))
        return self._update_metrics(total, terms, outputs, labels)

    def test_step(self, data):
        total, terms, outputs, labels, checks = self._forward_and_losses(
            data, training=False
        )
        with tf.control_dependencies(checks):
            return self._update_metrics(total, terms, outputs, labels)

    def call(self, images, training=False):
        """The factor networks' logits `{task: Head(z_common + z_task)}`."""
        self._check_images(images)
        common_code = self.common(images, training=training)
        return {
            task: factor((images, common_code), training=training)
            for task, factor in self.task_factors.items()
        }

    # === Config ===

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "teacher": serialize(self.teacher),
            "common": serialize(self.common),
            "tasks": {t: serialize(f) for t, f in self.task_factors.items()},
            "losses": [serialize(loss) for loss in self.factor_losses],
            "weight_decay": self.weight_decay,
            "teacher_features": self.teacher_features,
            "common_features": self.common_features,
            "value_range": (
                None if self.value_range is None else list(self.value_range)
            ),
            "check_batches": self.check_batches,
            "stop_on_nonfinite_loss": self.stop_on_nonfinite_loss,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        deserialize = keras.saving.deserialize_keras_object
        for key in ("teacher", "common"):
            config[key] = deserialize(config[key])
        config["tasks"] = {
            t: deserialize(f) for t, f in config["tasks"].items()
        }
        config["losses"] = [deserialize(loss) for loss in config["losses"]]
        return cls(**config)


__all__ = [
    "Factorizer",
]
