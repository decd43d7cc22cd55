"""`LossTermsModel`: one train/test step for models trained on loss terms.

The `Factorizer` and the KD baselines all train on a sum of named, weighted
loss terms. This base class writes the step once (the template method of
keras-tuner's `HyperModel`): a subclass implements

```python
def _forward_and_losses(self, data, training):
    ...
    return total, {"<name>_loss": weighted_term, ...}, outputs
```

and `train_step`/`test_step` share it, so the two never drift. `fit` logs
`loss`, every term `<name>_loss` and each task's `<task>_accuracy`
(`outputs.logits[task]` against the labels); a subclass adds trackers with
`_extra_trackers` / `_extra_metric_values` and in-step checks with
`_batch_assertions` / `_loss_assertions`.

Checks under XLA: XLA drops `tf.debugging.Assert` ops, so a step compiled
whole would train on a label of 99 silently. With `jit_compile=True` the
step itself stays a plain `tf.function` that runs the checks, and only the
forward pass and the gradients (`_forward_and_gradients`, the heavy part)
are compiled with XLA, as a nested `tf.function(jit_compile=True)`; the
update waits for the batch and loss checks as without XLA.
`model.jit_compile` then reads False and `model.xla_forward` True.

Non-finite losses: a training step whose loss is NaN or Inf stops `fit`
(`_loss_assertions`, before its update). A validation or `evaluate` batch
whose loss is NaN or Inf is skipped instead: it updates no metric but the
count `nonfinite_batches` of the test logs (`val_nonfinite_batches` in
`fit`'s history), so the means are over the finite batches, and the
`Factorizer` warns with the count. Bad data (NaN images, labels out of
range) raises in both.

What stays `tf` and why: the step is TensorFlow's custom-step idiom
(`tf.GradientTape`, `tf.control_dependencies` holding the update behind the
`tf.debugging` checks, `tf.distribute` for the replica count); there is no
`keras.ops` equivalent of a tape or of control dependencies.
"""

import functools

from kfactor.training.optimizers import FusedAdam

import keras
import tensorflow as tf
from keras import ops

#: The test logs' count of batches skipped for a NaN or Inf loss.
SKIPPED_METRIC = "nonfinite_batches"


class LossTermsModel(keras.Model):
    """A `keras.Model` trained on a sum of named loss terms.

    Subclasses call `_init_trackers(term_names, task_names)` in `__init__`
    and implement `_forward_and_losses`. The gradient of each replica is
    that of `total / num_replicas` (its share of the global mean), variables
    no term reaches are left out of the update, and `weight_decay` (0 unless
    a subclass sets it) adds coupled L2 decay `g + wd * w`.
    """

    weight_decay = 0.0

    def _init_trackers(self, term_names, task_names):
        """The trackers of `loss`, `<term>` and `<task>_accuracy`."""
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = {
            name: keras.metrics.Mean(name=name) for name in term_names
        }
        self.accuracy_trackers = {
            task: keras.metrics.SparseCategoricalAccuracy(
                name=f"{task}_accuracy"
            )
            for task in task_names
        }
        self.skipped_tracker = keras.metrics.Sum(name=SKIPPED_METRIC)

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            *self.term_trackers.values(),
            *self.accuracy_trackers.values(),
            *self._extra_trackers(),
            self.skipped_tracker,
        ]

    def compile(self, optimizer=None, **kwargs):
        """Like `keras.Model.compile`; `optimizer` defaults to
        `FusedAdam(1e-3)` (Keras's Adam on one kernel a variable).

        `jit_compile=True` compiles the forward pass and gradients with
        XLA, not the checks around them (module doc).
        """
        if optimizer is None:
            optimizer = FusedAdam(learning_rate=1e-3)
        super().compile(optimizer=optimizer, **kwargs)
        self.xla_forward = bool(self.jit_compile)
        self._compiled_forward = {}
        self.jit_compile = False

    def _forward_function(self, training):
        """`_forward_and_gradients`, compiled with XLA if `xla_forward`."""
        if not getattr(self, "xla_forward", False) or self.run_eagerly:
            return functools.partial(self._forward_and_gradients, training)
        if training not in self._compiled_forward:
            self._compiled_forward[training] = tf.function(
                functools.partial(self._forward_and_gradients, training),
                jit_compile=True,
                reduce_retracing=True,
                autograph=False,  # as Keras's own step: no Python rewriting
            )
        return self._compiled_forward[training]

    # === Hooks ===

    def _forward_and_losses(self, data, training):
        """Returns `(total, {"<name>_loss": term}, outputs)` of one batch.

        `outputs.logits` is a dict task -> logits (the accuracies' input).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement _forward_and_losses()."
        )

    def _batch_assertions(self, data):
        """Checks `data` now; returns value-check ops to run before the
        update (none by default)."""
        return []

    def _loss_assertions(self, total, terms, after):
        """Check ops of the loss terms, run after `after` (none by
        default)."""
        return []

    def _extra_trackers(self):
        """Trackers beyond the loss, terms and accuracies."""
        return []

    def _extra_metric_values(self, outputs):
        """`{tracker name: value}` of one batch, for `_extra_trackers`.

        Computed outside the test step's `tf.cond` (which only applies the
        updates), so it may hold cross-replica ops such as `all_gather`:
        under `tf.distribute` they cannot run inside a cond branch.
        """
        return {}

    # === Steps ===

    def _update_metrics(self, data, total, terms, outputs, extra_values):
        _, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        self.loss_tracker.update_state(total)
        for name, tracker in self.term_trackers.items():
            tracker.update_state(terms[name])
        for task, tracker in self.accuracy_trackers.items():
            tracker.update_state(labels[task], outputs.logits[task])
        trackers = {m.name: m for m in self._extra_trackers()}
        for name, value in extra_values.items():
            trackers[name].update_state(value)
        return self._results()

    def _results(self, with_skipped=False):
        return {
            m.name: m.result()
            for m in self.metrics
            if with_skipped or m is not self.skipped_tracker
        }

    def _forward_and_gradients(self, training, data):
        """`(total, terms, outputs, gradients)`; no gradients in a test."""
        if not training:
            return (*self._forward_and_losses(data, training=False), [])
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            total, terms, outputs = self._forward_and_losses(
                data, training=True
            )
            scaled = self.optimizer.scale_loss(total / replicas)
        gradients = tape.gradient(scaled, self.trainable_variables)
        return total, terms, outputs, gradients

    def _pairs(self, gradients):
        """`(gradient, variable)` pairs, with weight decay; no `None`."""
        pairs = [
            (g, v)
            for g, v in zip(gradients, self.trainable_variables)
            if g is not None
        ]
        if self.weight_decay:
            pairs = [
                (g + self.weight_decay * ops.cast(v, g.dtype), v)
                for g, v in pairs
            ]
        return pairs

    def train_step(self, data):
        checks = self._batch_assertions(data)
        total, terms, outputs, gradients = self._forward_function(True)(data)
        checks += self._loss_assertions(total, terms, checks)
        pairs = self._pairs(gradients)
        # No update unless the batch and the loss passed their checks.
        with tf.control_dependencies(checks):
            self.optimizer.apply(*zip(*pairs))
        extra_values = self._extra_metric_values(outputs)
        return self._update_metrics(data, total, terms, outputs, extra_values)

    def test_step(self, data):
        """A test batch whose loss is NaN or Inf is skipped: it updates no
        metric but `nonfinite_batches` (module doc); bad data still
        raises."""
        checks = self._batch_assertions(data)
        total, terms, outputs, _ = self._forward_function(False)(data)
        finite = ops.all(
            ops.stack(
                [
                    ops.all(ops.isfinite(ops.cast(v, "float32")))
                    for v in [total, *terms.values()]
                ]
            )
        )

        extra_values = self._extra_metric_values(outputs)

        def update():
            self._update_metrics(data, total, terms, outputs, extra_values)
            return ops.convert_to_tensor(True)

        with tf.control_dependencies(checks):
            tf.cond(finite, update, lambda: ops.convert_to_tensor(False))
            self.skipped_tracker.update_state(1.0 - ops.cast(finite, "float32"))
            return self._results(with_skipped=True)


__all__ = [
    "SKIPPED_METRIC",
    "LossTermsModel",
]
