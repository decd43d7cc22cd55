"""Hyper-parameter search of the factorization objective with keras-tuner.

`FactorizationHyperModel` is a `keras_tuner.HyperModel`: `build(hp)` makes a
compiled `kfactor.Factorizer` (fresh factor networks, the same frozen
teacher) and `fit(hp, model, ...)` trains it, logging the tuning objective.
Any keras-tuner tuner and oracle runs the search:

```python
hypermodel = FactorizationHyperModel(
    teacher,
    common=lambda: kfactor.zoo.simple_conv64(10),
    tasks={t: lambda: kfactor.zoo.simple_conv64(None) for t in teacher.output})
tuner = keras_tuner.RandomSearch(
    hypermodel, objective=hypermodel.objective, max_trials=20,
    directory="kfactor_runs/tuning", project_name="imb")
tuner.search(train_ds, validation_data=test_ds, epochs=4)
best_hp = tuner.get_best_hyperparameters()[0]
```

Objectives (all maximised), logged every epoch by `FactorizationScores`:

- `val_mean_factor_accuracy` (default): the mean over tasks of each factor
  network's validation accuracy.
- `val_task_code_mig`: the MIG (`lab.disentanglement.mig`) of the concatenated
  task codes (posterior means) against the tasks' validation labels: high
  when each task's label is captured by one code dimension.
- `val_accuracy_mig_mean`: `(val_mean_factor_accuracy + val_task_code_mig)
  / 2`, both in [0, 1]: accurate and disentangled factors.
"""

from kfactor.data.collect import collect_codes
from kfactor.data.collect import concatenate_blocks
from kfactor.lab import disentanglement as metrics
from kfactor.objective import mi
from kfactor.training.factorizer import Factorizer
from kfactor.training.optimizers import FusedAdam

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

MEAN_ACCURACY = "mean_factor_accuracy"
TASK_CODE_MIG = "task_code_mig"
ACCURACY_MIG_MEAN = "accuracy_mig_mean"
#: The tuning objectives kfactor logs, each maximised.
OBJECTIVES = (
    f"val_{MEAN_ACCURACY}",
    f"val_{TASK_CODE_MIG}",
    f"val_{ACCURACY_MIG_MEAN}",
    MEAN_ACCURACY,
)
#: The `imb_objective` options that `search_space` searches.
SEARCHED_OPTIONS = (
    "beta",
    "infomax_weight",
    "infomax_estimator",
    "kd",
    "kd_weight",
    "kd_temperature",
)


class FactorizationScores(keras.callbacks.Callback):
    """Adds the tuning objectives to the epoch logs of `Factorizer.fit`.

    `mean_factor_accuracy` (and `val_mean_factor_accuracy` when `fit` has
    validation data) every epoch; with `mig_data`, also
    `val_task_code_mig` and `val_accuracy_mig_mean`. Put it before callbacks
    that read these logs (keras-tuner's checkpointing, `EarlyStopping`).

    Args:
        mig_data: batched `(images, {task: labels})` on which to compute the
            MIG of the task codes, or `None` to skip it.
        mig_examples: at most this many examples of `mig_data` are used.

    Example:

    ```python
    history = factorizer.fit(train_ds, validation_data=test_ds,
                             callbacks=[FactorizationScores()])
    history.history["val_mean_factor_accuracy"]
    ```
    """

    def __init__(self, mig_data=None, mig_examples=2000):
        super().__init__()
        self.mig_data = mig_data
        self.mig_examples = mig_examples

    def _task_code_mig(self):
        factorizer = self.model
        tasks = list(factorizer.task_names)
        readers = {
            task: (
                lambda images, f=factor: f.encode(images, training=False).mean
            )
            for task, factor in factorizer.task_factors.items()
        }
        codes, factors = collect_codes(
            readers, self.mig_data, tasks, max_examples=self.mig_examples
        )
        return metrics.mig(concatenate_blocks(codes, tasks), factors)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        tasks = self.model.task_names
        for prefix in ("", "val_"):
            keys = [f"{prefix}{task}_accuracy" for task in tasks]
            if all(key in logs for key in keys):
                logs[f"{prefix}{MEAN_ACCURACY}"] = float(
                    np.mean([logs[key] for key in keys])
                )
        if self.mig_data is not None:
            mig = float(self._task_code_mig())
            logs[f"val_{TASK_CODE_MIG}"] = mig
            accuracy = logs.get(f"val_{MEAN_ACCURACY}")
            if accuracy is not None:
                logs[f"val_{ACCURACY_MIG_MEAN}"] = 0.5 * (accuracy + mig)


def _check_builder(builder, argument):
    if not callable(builder) or isinstance(builder, keras.layers.Layer):
        raise TypeError(
            f"Expected {argument} to be a function that builds a new Keras "
            f"model (a builder), so every trial starts fresh. Received: "
            f"{builder!r}. Fix: pass e.g. lambda: zoo.simple_conv64(10)."
        )


class FactorizationHyperModel(keras_tuner.HyperModel):
    """A keras-tuner `HyperModel` that tunes the InfoMax-Bottleneck objective.

    Searched (see `search_space`): beta (InfoMin weight, log-uniform), the
    InfoMax weight and estimator (`kfactor.objective.mi.ESTIMATORS`), the KD
    kind, weight and, for soft-target KD, temperature. Every trial builds fresh
    factor networks with the builders and factorizes the same frozen teacher.

    The global dtype policy at construction (e.g. `"mixed_float16"`) is
    restored in `build`: keras-tuner's `clear_session()` before each trial
    resets it to float32.

    To narrow the search, fix options here (`kd="soft_target"` fixes the KD
    kind, still searching its temperature) or give the tuner a
    `keras_tuner.HyperParameters` with your own ranges
    (`hyperparameters=hp, tune_new_entries=True`): keras-tuner keeps the
    first declaration of a name. Override `search_space` or
    `build_optimizer` for other searches.

    Args:
        teacher: the frozen teacher, images -> `{task: logits}`.
        common: a function with no arguments returning a new common encoder
            (images -> `[batch, code_dim]`).
        tasks: dict task -> function with no arguments returning a new task
            encoder (or `kfactor.TaskFactor`).
        objective: one of `OBJECTIVES` (see the module docstring).
        learning_rate: Adam's learning rate.
        weight_decay: the `Factorizer`'s coupled weight decay.
        teacher_features: the `Factorizer`'s InfoMax teacher layers.
        common_features: the `Factorizer`'s InfoMax common layers.
        mig_examples: validation examples used by the MIG objectives.
        compile_options: extra `Factorizer.compile` arguments, e.g.
            `{"jit_compile": True}` or `{"run_eagerly": True}`.
        name: name of the hypermodel.
        tunable: whether its hyper-parameters join the search space.
        **fixed_options: `kfactor.objective.imb.imb_objective` options held
        fixed
            (a searched one, e.g. `beta=1e-3`, leaves the search).

    Attributes:
        objective: the `keras_tuner.Objective` to give the tuner.

    Example:

    >>> teacher = multitask_teacher(
    ...     {"shape": 3}, encoder=simple_conv64(widths=NARROW_WIDTHS))
    >>> hypermodel = FactorizationHyperModel(
    ...     teacher, common=lambda: simple_conv64(10, widths=NARROW_WIDTHS),
    ...     tasks={"shape": lambda: simple_conv64(None, widths=NARROW_WIDTHS)})
    >>> factorizer = hypermodel.build(keras_tuner.HyperParameters())
    >>> [loss.name for loss in factorizer.factor_losses]
    ['infomax', 'hint', 'infomin', 'kd', 'cls', 'aux', 'adversary']
    """

    def __init__(
        self,
        teacher,
        common,
        tasks,
        objective=OBJECTIVES[0],
        learning_rate=1e-3,
        weight_decay=1e-4,
        teacher_features="auto",
        common_features=None,
        mig_examples=2000,
        compile_options=None,
        name="factorization",
        tunable=True,
        **fixed_options,
    ):
        super().__init__(name=name, tunable=tunable)
        if not isinstance(teacher, keras.Model):
            raise TypeError(
                "Expected teacher to be a keras.Model images -> {task: "
                f"logits}}. Received: {type(teacher).__name__}"
            )
        _check_builder(common, "common")
        if not isinstance(tasks, dict) or not tasks:
            raise ValueError(
                "Expected tasks as a non-empty dict task -> builder. "
                f"Received: tasks={tasks!r}"
            )
        for task, builder in tasks.items():
            _check_builder(builder, f"tasks[{task!r}]")
        if objective not in OBJECTIVES:
            raise ValueError(
                f"Expected objective in {OBJECTIVES}. Received: "
                f"objective={objective!r}"
            )
        self.teacher = teacher
        self.common = common
        self.tasks = dict(tasks)
        self.objective = keras_tuner.Objective(objective, direction="max")
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.teacher_features = teacher_features
        self.common_features = common_features
        self.mig_examples = mig_examples
        self.compile_options = dict(compile_options or {})
        self.dtype_policy = keras.mixed_precision.global_policy().name
        self.fixed_options = dict(fixed_options)

    # === Search space ===

    def _option(self, hp, name, declare):
        """`declare()` unless the option is fixed (then `hp.Fixed`)."""
        if name in self.fixed_options:
            return hp.Fixed(name, self.fixed_options[name])
        return declare()

    def search_space(self, hp):
        """Declares the searched options; returns `imb_objective` kwargs.

        Args:
            hp: a `keras_tuner.HyperParameters`.

        Returns:
            dict of the searched `kfactor.objective.imb.imb_objective`
            options (defaults: the reference dSprites configuration).
        """
        options = {
            "beta": self._option(
                hp,
                "beta",
                lambda: hp.Float(
                    "beta", 1e-5, 1e-1, sampling="log", default=1e-3
                ),
            ),
            "infomax_weight": self._option(
                hp,
                "infomax_weight",
                lambda: hp.Float(
                    "infomax_weight", 0.1, 10.0, sampling="log", default=1.0
                ),
            ),
            "infomax_estimator": self._option(
                hp,
                "infomax_estimator",
                lambda: hp.Choice(
                    "infomax_estimator",
                    sorted(mi.ESTIMATORS),
                    default="infonce",
                ),
            ),
            "kd": self._option(
                hp,
                "kd",
                lambda: hp.Choice("kd", ["mse", "soft_target"], default="mse"),
            ),
            "kd_weight": self._option(
                hp,
                "kd_weight",
                lambda: hp.Float(
                    "kd_weight", 1e-2, 1.0, sampling="log", default=0.1
                ),
            ),
        }
        with hp.conditional_scope("kd", ["soft_target"]):
            options["kd_temperature"] = self._option(
                hp,
                "kd_temperature",
                lambda: hp.Float(
                    "kd_temperature", 1.0, 20.0, sampling="log", default=4.0
                ),
            )
        # An inactive conditional hyper-parameter is None: keep the default.
        return {k: v for k, v in options.items() if v is not None}

    def build_optimizer(self, hp):
        """A new optimizer for one trial (`FusedAdam` at `learning_rate`)."""
        return FusedAdam(self.learning_rate)

    # === HyperModel ===

    def build(self, hp):
        """Builds and compiles a `Factorizer` with the trial's options."""
        if keras.mixed_precision.global_policy().name != self.dtype_policy:
            keras.mixed_precision.set_global_policy(self.dtype_policy)
        options = {
            **{
                k: v
                for k, v in self.fixed_options.items()
                if k not in SEARCHED_OPTIONS
            },
            **self.search_space(hp),
        }
        factorizer = Factorizer(
            self.teacher,
            common=self.common(),
            tasks={task: build() for task, build in self.tasks.items()},
            weight_decay=self.weight_decay,
            teacher_features=self.teacher_features,
            common_features=self.common_features,
            **options,
        )
        factorizer.compile(
            optimizer=self.build_optimizer(hp), **self.compile_options
        )
        return factorizer

    def fit(self, hp, model, *args, **kwargs):
        """Trains `model` with `Factorizer.fit`, logging the objectives.

        Args:
            hp: the trial's `keras_tuner.HyperParameters`.
            model: the `Factorizer` from `build`.
            *args, **kwargs: arguments of `Factorizer.fit`, from
                `tuner.search(...)`; the `val_` objectives need
                `validation_data`.

        Returns:
            The `keras.callbacks.History`; keras-tuner reads the best epoch's
            objective from it.
        """
        validation_data = kwargs.get("validation_data")
        if self.objective.name.startswith("val_") and validation_data is None:
            raise ValueError(
                f"The objective {self.objective.name!r} needs validation "
                "data. Received: no validation_data. Fix: "
                "tuner.search(train_ds, validation_data=val_ds, ...)."
            )
        needs_mig = self.objective.name in (
            f"val_{TASK_CODE_MIG}",
            f"val_{ACCURACY_MIG_MEAN}",
        )
        mig_data = validation_data if needs_mig else None
        if isinstance(mig_data, (tuple, list)):
            mig_data = tf.data.Dataset.from_tensor_slices(
                tuple(mig_data)[:2]
            ).batch(256)
        scores = FactorizationScores(
            mig_data=mig_data,
            mig_examples=self.mig_examples,
        )
        callbacks = [scores, *(kwargs.pop("callbacks", None) or [])]
        return model.fit(*args, callbacks=callbacks, **kwargs)


__all__ = [
    "ACCURACY_MIG_MEAN",
    "MEAN_ACCURACY",
    "OBJECTIVES",
    "SEARCHED_OPTIONS",
    "TASK_CODE_MIG",
    "FactorizationHyperModel",
    "FactorizationScores",
]
