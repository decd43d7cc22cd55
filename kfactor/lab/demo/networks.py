"""The demo's networks: teacher, factorizer and baselines, and their fits.

Every network of the demo is built from the narrow SimpleConv64 encoders
of a `DemoConfig`; each is trained with the same warm-up + cosine Adam
schedule over passes of the demo's train split.
"""

import time

from kfactor.lab import datasets as data_lib
from kfactor.lab.baselines import DistilledStudent
from kfactor.lab.baselines import SingleTaskNetworks
from kfactor.lab.demo.config import steps_per_epoch
from kfactor.lab.teacher import warmup_cosine_adam
from kfactor.layers.factor_layers import TaskFactor
from kfactor.training.factorizer import Factorizer
from kfactor.zoo.simple_conv import copy_weights_by_name
from kfactor.zoo.simple_conv import multitask_teacher
from kfactor.zoo.simple_conv import simple_conv64

#: The KD student's widths are this much wider than the teacher's: the
#: parameters of all the factor networks together (common + five task
#: encoders, 805k against 799k at the demo's widths; a test checks it).
KD_STUDENT_WIDTH_MULTIPLIER = 2.5


def build_teacher(config, name="teacher", width_multiplier=1.0):
    """The demo's multi-task teacher: a SimpleConv64 of `config`'s widths
    (times `width_multiplier`) with one head per dSprites factor."""
    encoder = simple_conv64(
        config.latent_dim,
        widths=config.widths,
        width_multiplier=width_multiplier,
        normalization=config.normalization,
        name=f"{name}_encoder",
    )
    return multitask_teacher(
        data_lib.DSPRITES_NUM_CLASSES, encoder=encoder, name=name
    )


def encoder_builder(config):
    """`(latent_dim, name) -> encoder`: the demo's factor encoders."""

    def encoder(latent_dim, name):
        return simple_conv64(
            latent_dim,
            widths=config.widths,
            normalization=config.normalization,
            name=name,
        )

    return encoder


def build_factorizer(
    teacher, config, task_names=None, variational=None, **options
):
    """The demo's factorizer: narrow SimpleConv64 common and task encoders.

    Args:
        teacher: the dSprites teacher.
        config: a `DemoConfig` (widths, latent size, codes, beta).
        task_names: the tasks to factorize (all five by default).
        variational: Gaussian (True) or deterministic task codes; by
            default `config.variational`.
        **options: `Factorizer` / `imb_objective` options (`beta` defaults
            to `config.beta`).
    """
    encoder = encoder_builder(config)
    variational = config.variational if variational is None else variational
    task_names = task_names or config.task_names
    tasks = {
        t: TaskFactor(
            encoder(None, f"{t}_encoder"),
            variational=variational,
            initial_log_var=config.initial_log_var if variational else None,
            name=f"task_{t}",
        )
        for t in task_names
    }
    options.setdefault("beta", config.beta)
    options = {**objective_options(config), **options}
    common = encoder(config.latent_dim, "common_encoder")
    if config.common_from_teacher:
        # A warm start, not the paper's method (which starts the common
        # network at random, often of another architecture): opt-in only.
        copy_weights_by_name(teacher, common)
    return Factorizer(teacher, common=common, tasks=tasks, **options)


def objective_options(config):
    """The `Factorizer` options that `config` sets: the InfoMax levels
    (`infomax_layers`, named in both the teacher and the common encoder,
    which share the demo's architecture) and the objective weights it does
    not leave to the `Factorizer`'s defaults (`None`)."""
    options = {}
    if config.infomax_layers:
        options["teacher_features"] = list(config.infomax_layers)
        options["common_features"] = list(config.infomax_layers)
    for name in (
        "infomax_estimator",
        "hint_weight",
        "queue_weight",
        "adversary_weight",
    ):
        if getattr(config, name) is not None:
            options[name] = getattr(config, name)
    if config.adversary_mode is not None:
        options["adversary_mode"] = config.adversary_mode
    if config.adversary_weight != 0.0:
        # Cells dSprites forces (a code that predicts orientation knows the
        # shape): no adversary fights them.
        options["adversary_exclude"] = sorted(
            data_lib.DSPRITES_INTRINSIC_LEAKAGE
        )
    return options


def build_single_task_networks(teacher, config, task_names=None):
    """Independent single-task networks of the task factors' architecture."""
    encoder = encoder_builder(config)
    task_names = task_names or config.task_names
    return SingleTaskNetworks(
        teacher,
        {t: encoder(None, f"single_{t}_encoder") for t in task_names},
        code_dim=config.latent_dim,
    )


def optimizer_for(config, epochs):
    """Warm-up + cosine Adam over `epochs` passes of the train split."""
    return warmup_cosine_adam(
        config.learning_rate, max(1, epochs * steps_per_epoch(config))
    )


def timed_fit(model, train_ds, epochs, config, **kwargs):
    """Fits `model` on `epochs` passes of the train split; returns
    `(seconds, images per second)`."""
    start = time.perf_counter()
    # The dataset reshuffles itself each epoch; shuffle=False only stops
    # Keras warning that its own (default) shuffle does not apply.
    model.fit(
        train_ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch(config),
        verbose=config.verbose,
        shuffle=False,
        **kwargs,
    )
    seconds = time.perf_counter() - start
    images = epochs * config.num_train
    return seconds, images / seconds if seconds > 0 else 0.0


def train_kd_student(teacher, train_ds, config):
    """The KD baseline: a multi-task student of the factor networks' total
    size, from scratch, trained as long as the factorization."""
    student = build_teacher(
        config, name="kd_student", width_multiplier=KD_STUDENT_WIDTH_MULTIPLIER
    )
    distilled = DistilledStudent(teacher, student)
    distilled.compile(optimizer=optimizer_for(config, config.kd_epochs))
    seconds, _ = timed_fit(distilled, train_ds, config.kd_epochs, config)
    return student, seconds


def train_single_task_networks(teacher, train_ds, config):
    """The single-task baseline, trained as long as the factorization."""
    networks = build_single_task_networks(teacher, config)
    networks.compile(optimizer=optimizer_for(config, config.single_task_epochs))
    seconds, _ = timed_fit(
        networks, train_ds, config.single_task_epochs, config
    )
    return networks, seconds


__all__ = [
    "KD_STUDENT_WIDTH_MULTIPLIER",
    "build_factorizer",
    "build_single_task_networks",
    "build_teacher",
    "encoder_builder",
    "objective_options",
    "optimizer_for",
    "timed_fit",
    "train_kd_student",
    "train_single_task_networks",
]
