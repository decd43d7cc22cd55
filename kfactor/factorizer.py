"""`Factorizer`: trains factor networks from a frozen teacher with `fit`.

```python
factorizer = kfactor.Factorizer(teacher, common=encoder, tasks=encoders)
factorizer.compile(optimizer=keras.optimizers.Adam(1e-3))
factorizer.fit(train_ds, validation_data=test_ds, epochs=3)
network = factorizer.factor_network("shape")   # images -> logits
```
"""

from kfactor import health
from kfactor import losses as losses_lib
from kfactor.features import TeacherReader
from kfactor.features import feature_model
from kfactor.features import flatten_feature
from kfactor.features import probe_teacher
from kfactor.layers import CommonFactor
from kfactor.layers import ProjectionMLP
from kfactor.layers import TaskFactor

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


@keras.saving.register_keras_serializable(package="kfactor")
class Factorizer(keras.Model):
    """Factorizes a frozen teacher into a common factor and task factors.

    Training minimises the InfoMax-Bottleneck objective (`kfactor.losses`):
    InfoMax between the projected teacher feature and the common feature,
    a variational bottleneck on each task code, KD from the teacher's logits,
    and CE of each factor network and of each task code's auxiliary head.
    `fit` logs the total, every weighted term (`<term>_loss`), each factor
    network's accuracy (`<task>_accuracy`) and the factorization's health
    (`kfactor.health`): the common code's mean pairwise cosine
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
        losses: list of `kfactor.losses.FactorLoss`; by default
            `imb_objective(**objective_options)`.
        weight_decay: coupled L2 weight decay added to every trainable
            gradient (`g + wd * w`, as PyTorch's `Adam(weight_decay)` of the
            reference; 1e-4 there). 0 disables it.
        teacher_features: `"auto"` or a list of teacher layer names that
            InfoMax pairs with `common_features` (one projection a level).
        common_features: list of the common encoder's layer names, as long as
            `teacher_features`; `None` pairs with the common code.
        **objective_options: arguments of `kfactor.losses.imb_objective`
            (e.g. `beta=1e-3`, `infomax_estimator="infonce"`).

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
                    "Expected kfactor.losses.FactorLoss objects. Received: "
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
        # Health of the factorization (see `kfactor.health`): is the common
        # code alive, and how many nats each task code keeps.
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

    # === Forward pass ===

    def _check_images(self, images):
        shape = tuple(images.shape)
        if len(shape) != len(self.image_shape) + 1:
            expected = ", ".join(map(str, self.image_shape))
            raise ValueError(
                f"Expected images shaped [batch, {expected}]. "
                f"Received: shape={shape}. Fix: batch the dataset "
                "(dataset.batch(n)) and keep the channel axis."
            )

    def _check_labels(self, labels):
        if not isinstance(labels, dict):
            raise ValueError(
                "Expected labels as a dict {task: integer labels} with tasks "
                f"{list(self.task_names)}. Received: {type(labels).__name__}"
            )
        missing = [t for t in self.task_names if t not in labels]
        if missing:
            raise ValueError(
                f"Labels are missing tasks {missing}. Received label keys: "
                f"{sorted(labels)}. Fix: yield (images, {{task: labels}}) with "
                f"every task of {list(self.task_names)}."
            )

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
        outputs = self._forward(images, training=training)
        total, terms = losses_lib.total_loss(
            self.factor_losses, outputs, labels
        )
        return total, terms, outputs, labels

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
            total, terms, outputs, labels = self._forward_and_losses(
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
        self.optimizer.apply(*zip(*pairs))
        return self._update_metrics(total, terms, outputs, labels)

    def test_step(self, data):
        total, terms, outputs, labels = self._forward_and_losses(
            data, training=False
        )
        return self._update_metrics(total, terms, outputs, labels)

    def call(self, images, training=False):
        """The factor networks' logits `{task: Head(z_common + z_task)}`."""
        self._check_images(images)
        common_code = self.common(images, training=training)
        return {
            task: factor((images, common_code), training=training)
            for task, factor in self.task_factors.items()
        }

    # === Factor networks ===

    def factor_network(self, task):
        """A standalone Keras model images -> logits for one task.

        It shares the trained layers (no copy): the common factor and the
        task's factor, with the code's mean (deterministic).
        """
        if task not in self.task_factors:
            raise ValueError(
                f"Unknown task {task!r}. This factorizer has tasks "
                f"{list(self.task_names)}."
            )
        images = keras.Input(shape=self.image_shape, name="images")
        common_code = self.common(images)
        logits = self.task_factors[task]((images, common_code))
        return keras.Model(images, logits, name=f"factor_network_{task}")

    def save_factors(self, directory, overwrite=False, test_accuracy=None):
        """Saves each factor as a SavedModel + manifest under `directory`.

        See `kfactor.artifacts.save_factors`; returns name -> directory.
        """
        from kfactor import artifacts

        return artifacts.save_factors(
            self, directory, overwrite=overwrite, test_accuracy=test_accuracy
        )

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
