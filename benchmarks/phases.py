"""The factorization step in cumulative phases: where its time goes.

`phase/{width}/{phase}` times, on the factorizer of `steps.factorize_items`
(`models.build_factorizer`) and the same cached batches, each phase of
`PHASES` with everything before it:

1. `teacher`: the frozen teacher's inference forward alone;
2. `forward`: + the six trained networks' forward (training mode), no loss;
3. `loss`: + the whole objective, the scalar loss (with the batch checks
   where `Factorizer._forward_and_losses` makes them);
4. `gradients`: + the backward pass (gradients computed, not applied);
5. `step`: the full training step (weight decay, Adam, metrics and any
   checks left) through Keras's train function, as `steps.train_loop`
   runs it.

The first four are `tf.function`s (`jit_compile=False`) that return every
tensor they compute, so that graph pruning drops none of the phase's work.
The difference of two successive phases is what the later one adds
(`phase_report.py`); `torch_reference.factorization_phases` splits the
PyTorch reference the same way.
"""

import collections

from kfactor.training.optimizers import FusedAdam

import tensorflow as tf

from benchmarks import models
from benchmarks import steps
from benchmarks.protocol import Item

PHASES = ("teacher", "forward", "loss", "gradients", "step")

#: What `factorizer_internals` gives each phase: `teacher(images)`, the
#: frozen teacher's outputs; `forward(images)`, every network's outputs in
#: training mode; `loss(batch)`, the scalar objective of `(images, labels)`.
Internals = collections.namedtuple("Internals", ["teacher", "forward", "loss"])


def factorizer_internals(factorizer):
    """The Factorizer's private forward and loss methods, for the phases.

    The one place that reaches into `kfactor.Factorizer`: re-point it when
    they move (the loss is the first element of `_forward_and_losses`'s
    result, whose other elements may change).
    """

    def forward(images):
        return factorizer._forward(images, training=True)

    def loss(batch):
        total, *_ = factorizer._forward_and_losses(batch, training=True)
        return total

    return Internals(factorizer.teacher_reader, forward, loss)


def _tensors(structure):
    """Every tensor of a nested structure (the `None`s left out)."""
    return [t for t in tf.nest.flatten(structure) if t is not None]


def phase_functions(factorizer):
    """`{phase: tf.function(batch)}` of the phases before the full step."""
    internals = factorizer_internals(factorizer)
    variables = factorizer.trainable_variables

    def gradients(batch):
        with tf.GradientTape() as tape:
            loss = internals.loss(batch)
        grads = tape.gradient(loss, variables)
        return [loss, *_tensors(grads)]

    functions = {
        "teacher": lambda batch: _tensors(internals.teacher(batch[0])),
        "forward": lambda batch: _tensors(internals.forward(batch[0])),
        "loss": internals.loss,
        "gradients": gradients,
    }
    return {
        phase: tf.function(function, jit_compile=False, autograph=False)
        for phase, function in functions.items()
    }


def function_loop(function, batches):
    """`run(calls)`: `calls` calls of `function(batch)`, cycling batches."""

    def run(calls):
        for call in range(calls):
            result = function(batches[call % len(batches)])
        for tensor in tf.nest.flatten(result):  # waits for the last call
            tensor.numpy()

    return run


def factorizer_phase_items(factorizer, width, batch_size):
    """The phase items of a factorizer (compiled here with Adam)."""
    factorizer.compile(
        optimizer=FusedAdam(steps.LEARNING_RATE),
        jit_compile=False,
    )
    batches = models.cached_batches(batch_size)
    runs = {
        phase: function_loop(function, batches)
        for phase, function in phase_functions(factorizer).items()
    }
    runs["step"] = steps.train_loop(factorizer, batches)
    meta = {"batch_size": batch_size, "parameters": factorizer.count_params()}
    return [
        Item(
            f"phase/{width}/{phase}",
            runs[phase],
            batch_size,
            meta={**meta, "phase": phase},
        )
        for phase in PHASES
    ]


def phase_items(width, batch_size):
    """One item a phase of the factorization step at `width`."""
    factorizer = models.build_factorizer(width)
    return factorizer_phase_items(factorizer, width, batch_size)
