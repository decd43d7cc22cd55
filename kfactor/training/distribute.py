"""Training under tf.distribute, on one machine or several (`TF_CONFIG`).

On one machine, `Factorizer.fit` works as is under `MirroredStrategy`: build
and compile inside `strategy.scope()`. The batch-level terms (InfoMax, the
batch-moment bottleneck, the projection's BatchNorm) see the global batch,
so with deterministic task factors a step equals the single-device step on
the same global batch (variational factors draw their noise per replica:
equal in expectation only).

Several machines use `MultiWorkerMirroredStrategy`, configured by `TF_CONFIG`
on every worker, each running the same script. Keras 3's `Model.fit` fails
there as soon as there are two workers (measured with Keras 3.15 / TF 2.21;
keras-team/keras#20585): `distributed_fit` then runs the model's own
`train_step`/`test_step` with `strategy.run` in a plain loop, and otherwise
calls `fit`. The module is `tf.distribute` and `tf.function` throughout:
Keras has no multi-worker API of its own for the TensorFlow backend.
"""

import logging

from kfactor import validation

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)


def _strategy_of(model, strategy):
    if strategy is not None:
        return strategy
    return getattr(model, "distribute_strategy", None) or (
        tf.distribute.get_strategy()
    )


def num_workers(strategy):
    """How many workers (machines) `strategy` spans; 1 unless multi-worker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, sum(len(tasks) for tasks in spec.values()))


def is_chief(strategy):
    """True on the worker that should write files (worker 0 or the chief).

    Example:

    >>> is_chief(tf.distribute.get_strategy())
    True
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or num_workers(strategy) == 1:
        return True
    if resolver.task_type == "chief":
        return True
    spec = resolver.cluster_spec().as_dict()
    return (
        "chief" not in spec
        and resolver.task_type == "worker"
        and resolver.task_id == 0
    )


def _run_steps(step, iterator, steps):
    """Runs `step` on up to `steps` batches (None: until exhausted)."""
    done = 0
    while steps is None or done < steps:
        try:
            batch = next(iterator)
        except StopIteration:
            break
        try:
            step(batch)
        except tf.errors.InvalidArgumentError as err:
            # A failed kfactor check in the step, as `Factorizer.fit` says it.
            translated = validation.translate_error(err)
            if translated is None:
                raise
            raise translated from err
        done += 1
    return done


def _results(model, prefix=""):
    return {
        f"{prefix}{name}": float(value)
        for name, value in model.get_metrics_result().items()
    }


def distributed_fit(
    model,
    dataset,
    epochs=1,
    validation_data=None,
    steps_per_epoch=None,
    strategy=None,
    custom_loop="auto",
    verbose=1,
):
    """Trains a compiled model under its strategy, even across workers.

    With `custom_loop="auto"`, `model.fit` runs unless the strategy spans
    several workers, where a loop calls `strategy.run(model.train_step)`
    (and `test_step` for `validation_data`) instead. The loop has no
    callbacks; every worker must see the same number of batches (use
    `drop_remainder=True`, or `repeat()` with `steps_per_epoch`).

    Args:
        model: a compiled Keras model (e.g. a `kfactor.Factorizer`) built
            inside `strategy.scope()`.
        dataset: a `tf.data.Dataset` of global batches.
        epochs: number of epochs.
        validation_data: a `tf.data.Dataset` evaluated after every epoch.
        steps_per_epoch: batches an epoch (None: the whole dataset).
        strategy: the strategy (default: the model's).
        custom_loop: `"auto"`, True (always loop) or False (always `fit`).
        verbose: `fit`'s verbosity; the loop logs each epoch at INFO level.

    Returns:
        A `keras.callbacks.History`.

    Example:

    ```python
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # TF_CONFIG
    with strategy.scope():
        factorizer = kfactor.Factorizer(teacher, common, tasks)
        factorizer.compile()
    history = distributed_fit(factorizer, train_ds, epochs=3)
    ```
    """
    if custom_loop not in ("auto", True, False):
        raise ValueError(
            "Expected custom_loop 'auto', True or False. Received: "
            f"custom_loop={custom_loop!r}"
        )
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            f"Expected a compiled model. Received: '{model.name}' without an "
            "optimizer. Fix: call model.compile(...) inside "
            "strategy.scope() first."
        )
    strategy = _strategy_of(model, strategy)
    if custom_loop == "auto":
        custom_loop = num_workers(strategy) > 1
    if not custom_loop:
        return model.fit(
            dataset,
            epochs=epochs,
            validation_data=validation_data,
            steps_per_epoch=steps_per_epoch,
            verbose=verbose,
        )
    if not model.optimizer.built:
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)

    @tf.function(reduce_retracing=True, autograph=False)
    def train_step(batch):
        strategy.run(model.train_step, args=(batch,))

    @tf.function(reduce_retracing=True, autograph=False)
    def test_step(batch):
        strategy.run(model.test_step, args=(batch,))

    distribute = strategy.experimental_distribute_dataset
    train_batches = distribute(dataset)
    # With steps_per_epoch, epochs continue one iterator (as `fit` does).
    iterator = iter(train_batches) if steps_per_epoch else None
    history = keras.callbacks.History()
    history.set_model(model)
    history.on_train_begin()
    for epoch in range(epochs):
        model.reset_metrics()
        epoch_batches = iter(train_batches) if iterator is None else iterator
        steps = _run_steps(train_step, epoch_batches, steps_per_epoch)
        if not steps:
            raise ValueError(
                "The dataset gave no batch. Fix: pass a non-empty dataset "
                "(with repeat() when steps_per_epoch is set)."
            )
        logs = _results(model)
        if validation_data is not None:
            model.reset_metrics()
            _run_steps(test_step, iter(distribute(validation_data)), None)
            logs.update(_results(model, "val_"))
        logger.info("Epoch %d/%d: %s", epoch + 1, epochs, logs)
        history.on_epoch_end(epoch, logs)
    return history


__all__ = [
    "distributed_fit",
    "is_chief",
    "num_workers",
]
