"""`Factorizer`: trains factor networks from a frozen teacher with `fit`.

```python
factorizer = kfactor.Factorizer(teacher, common=encoder, tasks=encoders)
factorizer.compile(optimizer=kfactor.FusedAdam(1e-3))
factorizer.fit(train_ds, validation_data=test_ds, epochs=3)
network = factorizer.factor_network("shape")   # images -> logits
```

The step is `kfactor.training.step.LossTermsModel`'s; the arguments' and
batches' checks are in `kfactor.training.checks`, the InfoMax wiring in
`kfactor.training.infomax`. The forward pass is `keras.ops`; `tf` stays for
`tf.data` and `tf.errors` (no Keras equivalents).
"""

import copy

from kfactor import validation
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.networks import FactorNetworks
from kfactor.layers.factor_layers import CommonFactor
from kfactor.layers.factor_layers import TaskFactor
from kfactor.layers.features import TeacherReader
from kfactor.layers.features import flatten_feature
from kfactor.layers.features import probe_teacher
from kfactor.objective import health
from kfactor.objective import losses as losses_lib
from kfactor.training import checks
from kfactor.training import infomax
from kfactor.training.step import SKIPPED_METRIC
from kfactor.training.step import LossTermsModel

import keras
import tensorflow as tf
from keras import ops


def _check_trainable(trainable):
    """Refuses `Factorizer(trainable=...)` other than True (its doc)."""
    if trainable is not True:
        raise ValueError(
            "Expected trainable=True: a Factorizer exists to train its "
            "factors (its teacher is frozen already), and trainable=False "
            "would leave fit nothing to train. Received: "
            f"trainable={trainable!r}. Fix: drop the argument; to freeze a "
            "part, set trainable = False on it before compile (e.g. "
            "factorizer.common.trainable = False, or "
            "factorizer.task_factors[task].trainable = False); to use "
            "trained factors frozen, freeze factor_network(task)."
        )


def _as_task_factor(task, model):
    if isinstance(model, TaskFactor):
        return model
    return TaskFactor(model, name=f"task_{task}")


@keras.saving.register_keras_serializable(package="kfactor")
class Factorizer(FactorNetworks, LossTermsModel):
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
            asserts: no measurable cost on CPU; they run outside the
            XLA-compiled part, so `jit_compile=True` keeps them).
        stop_on_nonfinite_loss: stop `fit` with a
            `kfactor.validation.NonFiniteError` naming the loss term that
            became NaN or Inf, before that step's update. False: train on
            (as Keras does without `TerminateOnNaN`).
        name: the model's name.
        trainable: only True, the default (a `ValueError` otherwise). A
            Factorizer exists to train its factors, and its teacher is
            frozen already; `trainable=False` would leave `fit` nothing
            to train. To freeze a part, set `trainable = False` on it
            before `compile` (e.g. `factorizer.common.trainable = False`
            or `factorizer.task_factors[task].trainable = False`); to use
            trained factors frozen, freeze what `factor_network(task)`
            returns.
        **objective_options: arguments of
        `kfactor.objective.imb.imb_objective`
            (e.g. `beta=1e-3`, `factor_head_weight=1.0`); a misspelt one
            is a `TypeError` naming the nearest valid option, and a
            deprecated name (`cls_weight`, `task_weight`) warns with its
            new one.

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
        trainable=True,
        **objective_options,
    ):
        _check_trainable(trainable)
        super().__init__(name=name)
        checks.check_teacher(teacher)
        self.image_shape = checks.image_shape(teacher, common)
        teacher_classes = probe_teacher(teacher, self.image_shape)
        checks.check_tasks(tasks, teacher_classes)
        teacher.trainable = False
        self.teacher = teacher
        self.task_names = tuple(tasks)
        self.num_classes = {t: teacher_classes[t] for t in self.task_names}
        self._init_factors(common, tasks)
        self.weight_decay = float(weight_decay)
        self.value_range = checks.check_value_range(value_range)
        self.check_batches = bool(check_batches)
        self.stop_on_nonfinite_loss = bool(stop_on_nonfinite_loss)
        self._fit_failed = False
        self._init_infomax_features(teacher_features, common_features)
        self.factor_losses = checks.resolve_losses(
            losses, objective_options, self
        )
        self._init_loss_layers()
        self._init_metrics()
        self.built = True

    # === Construction ===

    def _init_factors(self, common, tasks):
        images_shape = (None, *self.image_shape)
        self.common = (
            common if isinstance(common, CommonFactor) else CommonFactor(common)
        )
        self.common.build(images_shape)
        self.code_dim = int(self.common.compute_output_shape(images_shape)[-1])
        self.task_factors = {}
        for task in self.task_names:
            factor = _as_task_factor(task, tasks[task])
            factor.resolve_sizes(self.num_classes[task], self.code_dim)
            # A deserialized factor comes built (and locked) already.
            if not factor.built:
                factor.build((images_shape, (None, self.code_dim)))
            self.task_factors[task] = factor

    def _init_infomax_features(self, teacher_features, common_features):
        self.teacher_features = teacher_features
        self.common_features = common_features
        self.teacher_reader = TeacherReader(self.teacher, teacher_features)
        self.common_reader = infomax.common_reader(
            self.common.encoder, teacher_features, common_features
        )
        probe = ops.zeros((2, *self.image_shape))
        _, teacher_feats = self.teacher_reader(probe)
        _, common_feats = self._common_forward(probe, training=False)
        self.projections = infomax.projections(teacher_feats, common_feats)

    def _init_loss_layers(self):
        """Builds the terms' own layers (regressors, adversaries, queues)
        on a probe pass; tracked here, so they train with the factors."""
        probe = self._forward(ops.zeros((2, *self.image_shape)), False)
        for loss in self.factor_losses:
            loss.build(probe)
        self.loss_layers = [
            layer for loss in self.factor_losses for layer in loss.layers
        ]

    def _init_metrics(self):
        self._init_trackers(
            [f"{loss.name}_loss" for loss in self.factor_losses],
            self.task_names,
        )
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

    def _extra_trackers(self):
        return list(self.health_trackers.values())

    def compile(self, optimizer=None, jit_compile="auto", **kwargs):
        """`keras.Model.compile`, with kfactor's default optimizer.

        Args:
            optimizer: by default `kfactor.FusedAdam(learning_rate=1e-3)`
                (`kfactor.training.optimizers`: Keras's Adam update, run
                as one fused kernel a variable).
            jit_compile: as in `keras.Model.compile`, and `"auto"` is
                resolved by Keras: XLA only when TensorFlow sees a device
                other than a CPU, the model was not built under a
                `tf.distribute` strategy, every layer supports XLA, op
                determinism is off and `run_eagerly` is False (so no XLA on
                a CPU-only machine, where it made this step slower). XLA
                compiles the forward pass and the gradients only: the batch
                and loss checks (`check_batches`, `stop_on_nonfinite_loss`)
                run around them and stay in force
                (`kfactor.training.step`). After `compile`,
                `xla_forward` holds the resolved value and `jit_compile`
                reads False (the step as a whole is not XLA-compiled).
            **kwargs: the other `keras.Model.compile` arguments.
        """
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    # === Training ===

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, with kfactor's checks of the data.

        Before training it checks the structure, shapes and dtypes of `x`
        (a dataset's `element_spec`) and of `validation_data`; a failed
        in-step check is raised as the `ValueError` (or
        `kfactor.validation.NonFiniteError`) it describes; a dataset that
        yields no batch is a `ValueError`. A NaN or Inf training loss stops
        it (`stop_on_nonfinite_loss`); a validation batch whose loss is NaN
        or Inf is skipped and counted (`val_nonfinite_batches`), with a
        `NonFiniteValidationWarning`. After a failed `fit`, the next
        one traces its step afresh.
        """
        validation.check_fit_inputs(x, y, self.image_shape, self.task_names)
        arguments = checks.fit_arguments(x, y, args, kwargs)
        validation_data = arguments["validation_data"]
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
        arguments, counter = checks.with_batch_counter(arguments)
        history = self._run_checked(super().fit, **arguments)
        checks.check_some_batch_trained(counter.batches, arguments)
        checks.warn_skipped_batches(
            history.history.get(f"val_{SKIPPED_METRIC}"), "validation"
        )
        return history

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, raising failed checks as kfactor errors.

        A batch whose loss is NaN or Inf is skipped and counted in
        `nonfinite_batches`, with a warning (`kfactor.training.step`).
        """
        results = self._run_checked(super().evaluate, x, y, *args, **kwargs)
        checks.warn_skipped_batches([self.skipped_tracker.result()], "evaluate")
        return results

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

    # === Step hooks (`kfactor.training.step`) ===

    def _check_images(self, images):
        validation.check_image_signature(
            images.shape, images.dtype, self.image_shape
        )

    def _batch_assertions(self, data):
        """Checks the batch's structure; its value checks if `check_batches`."""
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._check_images(images)
        validation.check_label_signature(labels, self.task_names)
        if not self.check_batches:
            return []
        return checks.batch_assertions(
            images, labels, self.value_range, self.num_classes
        )

    def _loss_assertions(self, total, terms, after):
        if not self.stop_on_nonfinite_loss:
            return []
        return checks.loss_assertions(total, terms, after)

    def _forward_and_losses(self, data, training):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        outputs = self._forward(images, training=training)
        total, terms = losses_lib.total_loss(
            self.factor_losses, outputs, labels
        )
        if training:
            for loss in self.factor_losses:
                loss.update_state(outputs)
        return total, terms, outputs

    def _extra_metric_values(self, outputs):
        # Over the global batch (as the batch-level loss terms): the
        # cosine and participation ratio are not means over examples.
        common = losses_lib.gather_replicas(
            ops.stop_gradient(outputs.common_code)
        )
        values = {
            "common_cosine": health.mean_pairwise_cosine(common),
            "common_participation_ratio": health.participation_ratio(common),
        }
        for task, code in outputs.task_codes.items():
            values[f"{task}_kl"] = ops.stop_gradient(health.task_code_kl(code))
        return values

    # === Forward pass ===

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
            teacher_raw_features=teacher_features,
        )

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
        # Deep: deserializing consumes the nested configs.
        config = copy.deepcopy(config)
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
