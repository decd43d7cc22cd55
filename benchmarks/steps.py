"""Training-step items: the factorization step and the teacher step.

Both go through Keras's own train function (`model.make_train_function()`,
what `fit` and `train_on_batch` call), one step per call, on cached batches.
Modes: `eager` (`run_eagerly=True`), `function` (`tf.function`,
`jit_compile=False`) and `xla` (`jit_compile=True`).
"""

from kfactor.lab.teacher import compile_teacher
from kfactor.training.optimizers import FusedAdam

from benchmarks import flops
from benchmarks import models
from benchmarks.protocol import Item

MODES = ("eager", "function", "xla")
LEARNING_RATE = 1e-4  # the reference's; the speed does not depend on it


def compile_options(mode):
    """`compile` keyword arguments of a mode."""
    if mode not in MODES:
        raise ValueError(f"Expected a mode in {MODES}. Received: {mode!r}")
    return {"jit_compile": mode == "xla", "run_eagerly": mode == "eager"}


def build_optimizer(model):
    """Creates the optimizer's variables now, as `fit` does before its first
    step. Otherwise the first call of the train function creates them while
    tracing, and TensorFlow then traces the step a second time: measured on
    the narrow demo step, the first call took 78 s and the second 7 s,
    against 22 s and 0.3 s with the optimizer built first."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def train_loop(model, batches):
    """`run(calls)`: `calls` training steps through Keras's train function."""
    build_optimizer(model)
    model.make_train_function()

    def run(calls):
        for step in range(calls):
            logs = model.train_function([batches[step % len(batches)]])
        float(logs["loss"])  # waits for the last step

    return run


def factorize_items(width, mode, batch_size):
    """The factorization step: teacher forward + 6 trained networks."""
    factorizer = models.build_factorizer(width)
    options = compile_options(mode)
    factorizer.compile(
        optimizer=FusedAdam(LEARNING_RATE),
        jit_compile=options["jit_compile"],
        run_eagerly=options["run_eagerly"],
    )
    macs = flops.factorization_macs(factorizer)
    meta = {
        "forward_macs_per_image": macs,
        "flops_per_image": flops.factorization_step_flops(macs),
        "parameters": factorizer.count_params(),
        "batch_size": batch_size,
    }
    run = train_loop(factorizer, models.cached_batches(batch_size))
    return [Item(f"factorize/{width}/{mode}", run, batch_size, meta=meta)]


def teacher_items(width, mode, batch_size):
    """The teacher's plain training step (`compile_teacher`)."""
    teacher = models.build_teacher(width)
    options = compile_options(mode)
    compile_teacher(
        teacher,
        optimizer=FusedAdam(LEARNING_RATE),
        jit_compile=options["jit_compile"],
    )
    teacher.run_eagerly = options["run_eagerly"]
    macs = flops.forward_macs(teacher, teacher.input_shape[1:])
    meta = {
        "forward_macs_per_image": {"teacher": macs},
        "flops_per_image": flops.teacher_step_flops(macs),
        "parameters": teacher.count_params(),
        "batch_size": batch_size,
    }
    run = train_loop(teacher, models.cached_batches(batch_size))
    return [Item(f"teacher/{width}/{mode}", run, batch_size, meta=meta)]
