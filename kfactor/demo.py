"""The end-to-end demo: dSprites teacher -> factor networks -> report.

`run_demo(DemoConfig())` renders procedural dSprites, trains a multi-task
teacher, factorizes it into one common factor and five task factors, scores
both on the held-out split and writes `report.json` in `output_dir`.
"""

import dataclasses
import json
import logging
import os
import resource
import sys
import time

from kfactor import data as data_lib
from kfactor import metrics
from kfactor.evaluation import plots
from kfactor.evaluation.codes import COMMON
from kfactor.evaluation.codes import TEACHER
from kfactor.evaluation.codes import collect_codes
from kfactor.evaluation.codes import factorizer_readers
from kfactor.evaluation.common_report import RANDOM_ENCODER
from kfactor.evaluation.common_report import common_factor_report
from kfactor.evaluation.common_report import transfer_report
from kfactor.evaluation.predictions import collect_predictions
from kfactor.evaluation.predictions import task_accuracies
from kfactor.evaluation.report import disentanglement_report
from kfactor.evaluation.report import excess_leakage
from kfactor.evaluation.report import leakage_section
from kfactor.evaluation.report import summary_rows
from kfactor.factors.publish import publish_factors
from kfactor.layers.factor_layers import TaskFactor
from kfactor.training.baselines import DistilledStudent
from kfactor.training.baselines import SingleTaskNetworks
from kfactor.training.callbacks import CommonCollapseMonitor
from kfactor.training.factorizer import Factorizer
from kfactor.training.teacher import compile_teacher
from kfactor.training.teacher import warmup_cosine_adam
from kfactor.zoo.simple_conv import NARROW_WIDTHS
from kfactor.zoo.simple_conv import copy_weights_by_name
from kfactor.zoo.simple_conv import multitask_teacher
from kfactor.zoo.simple_conv import simple_conv64

import keras
import numpy as np

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"
TEACHER_FILE = "teacher.keras"
KD_STUDENT_FILE = "kd_student.keras"
#: The pretrained dSprites teacher shipped with kfactor, and the
#: `DemoConfig` it was trained with (its `teacher_*` fields and the split).
PRETRAINED_DIR = os.path.join(os.path.dirname(__file__), "pretrained")
PRETRAINED_TEACHER = os.path.join(PRETRAINED_DIR, "dsprites_teacher.keras")
PRETRAINED_TEACHER_INFO = os.path.join(PRETRAINED_DIR, "dsprites_teacher.json")
#: The `DemoConfig` fields that decide the teacher (its data and training).
TEACHER_FIELDS = (
    "seed",
    "num_train",
    "num_test",
    "widths",
    "latent_dim",
    "teacher_num_train",
    "teacher_epochs",
    "teacher_batch_size",
    "teacher_learning_rate",
)
#: The KD student's widths are this much wider than the teacher's: about
#: twice the parameters, the size of one factor network (common + task).
KD_STUDENT_WIDTH_MULTIPLIER = 1.4


@dataclasses.dataclass
class DemoConfig:
    """Sizes and schedule of the demo (defaults fit 15 min on 2 cores).

    The teacher is the pretrained one shipped in `kfactor/pretrained/`
    (`train_teacher=True` retrains it with the `teacher_*` fields: that is
    how the shipped one was made). It is a narrow SimpleConv64 with batch
    normalization, trained with per-task loss weights `1 / log K` and a
    warm-up + cosine Adam schedule (`kfactor.training.teacher`) on
    `teacher_num_train` images drawn around the test split, so it never saw
    a held-out image.

    The factorization uses batch-normalized encoders of the same widths,
    InfoNCE for the InfoMax term (the reference's `"dv"` formula collapses
    the common code) and Gaussian task codes (VIB) that start narrow
    (`initial_log_var`) under the bottleneck weight `beta`: the noise of
    a squeezed task code is what makes each factor network read the common
    code. The common encoder starts as a copy of the teacher's backbone
    (`common_from_teacher`; the task encoders start at random): the teacher
    learned orientation in 28,000 steps, more than the demo's budget lets a
    fresh common encoder learn it in. `single_task_epochs` trains the
    "knows only task k" baseline
    (independent single-task networks of the same encoder and code size)
    for as many steps, so that the task codes' leakage has a reference.
    """

    num_train: int = 50000
    num_test: int = 5000
    batch_size: int = 64
    factor_epochs: int = 5
    learning_rate: float = 2e-3
    widths: tuple = NARROW_WIDTHS
    latent_dim: int = 32
    normalization: str = "batch"
    variational: bool = True
    initial_log_var: float = -6.0
    beta: float = 0.03
    common_from_teacher: bool = True
    held_out: tuple = ()
    single_task_epochs: int = 5
    train_teacher: bool = False
    teacher_num_train: int = 150000
    teacher_epochs: int = 24
    teacher_batch_size: int = 128
    teacher_learning_rate: float = 3e-3
    kd_epochs: int = 0
    eval_train_examples: int = 10000
    eval_test_examples: int = 5000
    dci: bool = False
    seed: int = 0
    output_dir: str = "kfactor_runs/demo"
    verbose: int = 1

    def __post_init__(self):
        for name in (
            "num_train",
            "num_test",
            "batch_size",
            "latent_dim",
            "teacher_num_train",
            "teacher_batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"Expected {name} >= 1. Received: {name}="
                    f"{getattr(self, name)}"
                )
        for name in (
            "teacher_epochs",
            "factor_epochs",
            "kd_epochs",
            "single_task_epochs",
        ):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"Expected {name} >= 0. Received: {name}="
                    f"{getattr(self, name)}"
                )
        for name in ("learning_rate", "teacher_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"Expected {name} > 0. Received: {name}="
                    f"{getattr(self, name)}"
                )
        if self.beta < 0:
            raise ValueError(f"Expected beta >= 0. Received: beta={self.beta}")
        if self.normalization in ("", "none", "None"):
            self.normalization = None
        self.widths = tuple(int(w) for w in self.widths)
        self.held_out = tuple(self.held_out)
        unknown = sorted(set(self.held_out) - set(data_lib.DSPRITES_TASKS))
        if unknown:
            raise ValueError(
                f"Expected held_out factors among {data_lib.DSPRITES_TASKS}. "
                f"Received unknown factors: {unknown}."
            )
        if not self.task_names:
            raise ValueError(
                "held_out leaves no task to factorize. Fix: hold out fewer "
                f"than all of {data_lib.DSPRITES_TASKS}."
            )

    @property
    def task_names(self):
        """The factorized tasks: every dSprites factor not held out."""
        return tuple(
            t for t in data_lib.DSPRITES_TASKS if t not in self.held_out
        )


def dsprites_splits(config):
    """The train and test datasets of the demo (disjoint, seeded).

    The train dataset repeats (a new permutation every pass; fit it with
    `steps_per_epoch(config)`); the test dataset is one ordered pass.
    Keras's `fit` makes a new iterator of a finite dataset every epoch, and
    on 2 CPU cores the first step of about half the epochs then stalled for
    16-20 s (measured: teacher epochs of 40 s instead of 22 s); one
    iterator over a repeated dataset does not.
    """
    train, test = split_indices(config)
    train_ds = data_lib.dsprites_dataset(
        train,
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.seed,
        repeat=True,
    )
    test_ds = data_lib.dsprites_dataset(
        test, batch_size=config.batch_size, shuffle=False
    )
    return train_ds, test_ds


def split_indices(config):
    """The grid indices of the demo's train and test splits."""
    return data_lib.dsprites_split(
        config.num_train, config.num_test, seed=config.seed
    )


def teacher_indices(config):
    """The teacher's training images: drawn around the test split."""
    test = split_indices(config)[1]
    return data_lib.indices_outside(
        test, config.teacher_num_train, seed=config.seed + 1
    )


def steps_per_epoch(config):
    """Batches in one pass over the demo's train split."""
    return -(-config.num_train // config.batch_size)


def build_teacher(config, name="teacher", width_multiplier=1.0):
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


def train_teacher(config):
    """Trains the demo's teacher; returns `(teacher, seconds, images/s)`."""
    indices = teacher_indices(config)
    train_ds = data_lib.dsprites_dataset(
        indices,
        batch_size=config.teacher_batch_size,
        shuffle=True,
        seed=config.seed,
        repeat=True,
    )
    test_ds = dsprites_splits(config)[1]
    steps = -(-config.teacher_num_train // config.teacher_batch_size)
    optimizer = warmup_cosine_adam(
        config.teacher_learning_rate,
        max(1, steps * config.teacher_epochs),
    )
    teacher = compile_teacher(build_teacher(config), optimizer)
    start = time.perf_counter()
    teacher.fit(
        train_ds,
        epochs=config.teacher_epochs,
        steps_per_epoch=steps,
        validation_data=test_ds,
        verbose=config.verbose,
        shuffle=False,
    )
    seconds = time.perf_counter() - start
    images = config.teacher_epochs * steps * config.teacher_batch_size
    return teacher, seconds, images / seconds if seconds > 0 else 0.0


def teacher_config(config):
    """The fields of `config` that decide the teacher (`TEACHER_FIELDS`)."""
    values = dataclasses.asdict(config)
    return {
        name: list(values[name]) if name == "widths" else values[name]
        for name in TEACHER_FIELDS
    }


def check_pretrained_teacher(config, path=None, info_path=None):
    """Checks that the shipped teacher fits `config`; returns its info.

    Raises `ValueError` (saying to pass `--train_teacher`) when a file is
    missing, when the teacher's architecture differs from `config`'s, or
    when its training images meet `config`'s test split. Cheap: it reads
    only the JSON and compares index sets.
    """
    path = path or PRETRAINED_TEACHER
    info_path = info_path or PRETRAINED_TEACHER_INFO
    for file in (path, info_path):
        if not os.path.isfile(file):
            raise ValueError(
                f"The pretrained teacher file {file} is missing. Fix: "
                "reinstall kfactor, or pass --train_teacher to train one."
            )
    with open(info_path) as f:
        info = json.load(f)
    trained_with = DemoConfig(
        **{**info["config"], "widths": tuple(info["config"]["widths"])}
    )
    for name in ("widths", "latent_dim", "normalization"):
        if getattr(trained_with, name) != getattr(config, name):
            raise ValueError(
                f"The pretrained teacher has {name}="
                f"{getattr(trained_with, name)!r}, this run asks for "
                f"{getattr(config, name)!r}. Fix: pass --train_teacher to "
                "train a teacher of this architecture."
            )
    seen = np.intersect1d(
        teacher_indices(trained_with), split_indices(config)[1]
    )
    if seen.size:
        raise ValueError(
            f"The pretrained teacher was trained on {seen.size} of this "
            f"run's {config.num_test} test images (seed {config.seed}, "
            f"num_train {config.num_train}; it was trained for seed "
            f"{trained_with.seed}, num_train {trained_with.num_train}, "
            f"num_test {trained_with.num_test}). Fix: pass --train_teacher."
        )
    return info


def load_pretrained_teacher(config, path=None, info_path=None):
    """Loads the shipped teacher, checked to fit `config` (see
    `check_pretrained_teacher`); returns `(teacher, info)`."""
    info = check_pretrained_teacher(config, path, info_path)
    return keras.saving.load_model(path or PRETRAINED_TEACHER), info


def check_config(config):
    """Raises `ValueError` before anything is written if `config` cannot
    run: a split larger than the grid, or a pretrained teacher that does
    not fit."""
    split_indices(config)
    if not config.train_teacher:
        check_pretrained_teacher(config)


def get_teacher(config):
    """The run's teacher: `(teacher, info)`, pretrained or trained now."""
    if not config.train_teacher:
        logger.info("Loading the pretrained teacher (%s).", PRETRAINED_TEACHER)
        teacher, info = load_pretrained_teacher(config)
        return teacher, {
            "source": "pretrained",
            "file": os.path.relpath(PRETRAINED_TEACHER, PRETRAINED_DIR),
            "train_seconds": 0.0,
            "trained_with": info["config"],
        }
    logger.info("Training the teacher (%d epochs).", config.teacher_epochs)
    teacher, seconds, rate = train_teacher(config)
    return teacher, {
        "source": "trained",
        "train_seconds": seconds,
        "train_images_per_second": rate,
        "trained_with": teacher_config(config),
    }


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
    common = encoder(config.latent_dim, "common_encoder")
    if config.common_from_teacher:
        copy_weights_by_name(teacher, common)
    return Factorizer(teacher, common=common, tasks=tasks, **options)


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


def _timed_fit(model, train_ds, epochs, config, **kwargs):
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
    """The KD baseline: a multi-task student of one factor network's size."""
    student = build_teacher(
        config, name="kd_student", width_multiplier=KD_STUDENT_WIDTH_MULTIPLIER
    )
    distilled = DistilledStudent(teacher, student)
    distilled.compile(optimizer=optimizer_for(config, config.kd_epochs))
    seconds, _ = _timed_fit(distilled, train_ds, config.kd_epochs, config)
    return student, seconds


def train_single_task_networks(teacher, train_ds, config):
    """The single-task baseline, trained as long as the factorization."""
    networks = build_single_task_networks(teacher, config)
    networks.compile(optimizer=optimizer_for(config, config.single_task_epochs))
    seconds, _ = _timed_fit(
        networks, train_ds, config.single_task_epochs, config
    )
    return networks, seconds


def evaluate_accuracies(models, test_ds):
    """`{model name: {task: test accuracy}}`."""
    return evaluate_predictions(models, test_ds)[0]


def evaluate_predictions(models, test_ds):
    """`(accuracies, symmetry-aware orientation accuracies)` of `models`.

    The second is `{model: {"raw", "symmetry_aware"}}` for models that
    predict `orientation` (see `kfactor.metrics.symmetry`).
    """
    logits, labels = collect_predictions(models, test_ds)
    accuracies = {
        name: task_accuracies(v, labels) for name, v in logits.items()
    }
    orientation = {}
    for name, values in logits.items():
        if "orientation" not in values or "shape" not in labels:
            continue
        orientation[name] = {
            "raw": accuracies[name]["orientation"],
            "symmetry_aware": metrics.symmetric_orientation_accuracy(
                np.argmax(values["orientation"], -1),
                labels["orientation"],
                labels["shape"],
            ),
        }
    return accuracies, orientation


def evaluate_codes(factorizer, train_ds, test_ds, config):
    """The disentanglement report of the factorizer's codes."""
    return evaluate_readers(
        factorizer_readers(factorizer),
        factorizer.task_names,
        train_ds,
        test_ds,
        config,
    )


def collect_split_codes(readers, train_ds, test_ds, config):
    factor_names = data_lib.DSPRITES_TASKS
    # The train dataset repeats: read at most one pass of it.
    train = collect_codes(
        readers,
        train_ds,
        factor_names,
        min(config.eval_train_examples, config.num_train),
    )
    test = collect_codes(
        readers, test_ds, factor_names, config.eval_test_examples
    )
    return train, test


def evaluate_readers(readers, task_names, train_ds, test_ds, config):
    """The disentanglement report of the codes that `readers` read.

    `readers` (see `kfactor.evaluation.codes`) reads the teacher, common and
    each of `task_names` codes.
    """
    train, test = collect_split_codes(readers, train_ds, test_ds, config)
    return disentanglement_report(
        *train,
        *test,
        task_names=task_names,
        factor_names=data_lib.DSPRITES_TASKS,
        dci=config.dci,
        random_state=config.seed,
        intrinsic=data_lib.DSPRITES_INTRINSIC_LEAKAGE,
    )


def random_encoder_reader(config):
    """`images -> code` of a randomly initialized encoder of the common
    encoder's architecture: the floor of the transfer table."""
    encoder = encoder_builder(config)(config.latent_dim, RANDOM_ENCODER)

    def read(images):
        return encoder(images, training=False)

    return read


def probe_mi_fits(section):
    """The probe-MI section's common and teacher rows as fitted transfer
    probes (`transfer_report(fitted=...)`): the same whitened linear
    probes, not fitted twice."""
    fitted = {}
    for row, block in enumerate(section["block_names"]):
        if block in (COMMON, TEACHER):
            fitted[block] = {
                factor: {
                    "accuracy": section["accuracy"][row][k],
                    "chance": chance,
                }
                for k, (factor, chance) in enumerate(
                    zip(section["factor_names"], section["chance"])
                )
            }
    return fitted


def evaluate_factorization(
    factorizer, teacher_accuracy, train_ds, test_ds, config
):
    """`(disentanglement report, common_factor report, transfer report)`.

    The transfer report probes the frozen common code, the teacher latent
    and a randomly initialized encoder on every factor (see
    `kfactor.evaluation.common_report.transfer_report`).
    """
    readers = {
        **factorizer_readers(factorizer),
        RANDOM_ENCODER: random_encoder_reader(config),
    }
    train, test = collect_split_codes(readers, train_ds, test_ds, config)
    disentanglement = disentanglement_report(
        *train,
        *test,
        task_names=factorizer.task_names,
        factor_names=data_lib.DSPRITES_TASKS,
        dci=config.dci,
        random_state=config.seed,
        intrinsic=data_lib.DSPRITES_INTRINSIC_LEAKAGE,
    )
    heads = {
        task: numpy_head(factor.head)
        for task, factor in factorizer.task_factors.items()
    }
    common = common_factor_report(
        *train,
        *test,
        factor_names=data_lib.DSPRITES_TASKS,
        heads=heads,
        teacher_accuracy=teacher_accuracy,
        random_state=config.seed,
        probes=disentanglement["transfer"],
    )
    transfer = transfer_report(
        *train,
        *test,
        factor_names=data_lib.DSPRITES_TASKS,
        task_names=factorizer.task_names,
        random_state=config.seed,
        fitted=probe_mi_fits(disentanglement["probe_mi"]),
    )
    return disentanglement, common, transfer


def code_reader(networks, task):
    """`images -> code` of one single-task network (a named function: the
    code readers run inside a `tf.function`, and autograph cannot parse
    lambdas that share a line)."""

    def read(images):
        return networks.code(task, images)

    return read


def numpy_head(head):
    """A Keras head as a numpy function `codes -> logits`."""

    def logits(codes):
        return np.asarray(head(codes))

    return logits


#: Leakage probe -> its section's key in the disentanglement report.
LEAKAGE_KEYS = {"linear": "leakage", "knn": "leakage_knn"}


def leakage_sections(train, test, blocks, config):
    """`{probe: leakage_section}` of the `blocks` codes, both probes.

    Args:
        train, test: `(codes, factors)` from `collect_split_codes`.
        blocks: the code names to probe (task codes).
        config: the run's `DemoConfig` (the probes' seed).
    """
    (train_codes, train_factors), (test_codes, test_factors) = train, test
    return {
        probe: leakage_section(
            {b: train_codes[b] for b in blocks},
            train_factors,
            {b: test_codes[b] for b in blocks},
            test_factors,
            data_lib.DSPRITES_TASKS,
            probe=probe,
            intrinsic=data_lib.DSPRITES_INTRINSIC_LEAKAGE,
            random_state=config.seed,
        )
        for probe in LEAKAGE_KEYS
    }


def single_task_leakage(networks, kf_report, train_ds, test_ds, config):
    """The single-task networks' leakage (both probes) and KF's excess.

    Same probes, same images as the factorization's `leakage` and
    `leakage_knn` sections; `excess` is KF - single-task, cell by cell
    (negative: the task codes hold less of that factor than a network that
    only ever saw its own task).
    """
    readers = {
        task: code_reader(networks, task) for task in networks.task_names
    }
    train, test = collect_split_codes(readers, train_ds, test_ds, config)
    sections = leakage_sections(train, test, networks.task_names, config)
    for probe, key in LEAKAGE_KEYS.items():
        single = sections[probe]
        excess = excess_leakage(
            kf_report[key], single, data_lib.DSPRITES_INTRINSIC_LEAKAGE
        )
        single["excess"] = excess["excess"]
        single["max_nonintrinsic_excess"] = excess["max_nonintrinsic_excess"]
        single["nonintrinsic_cells_kf_below_single_task"] = excess[
            "nonintrinsic_cells_below_reference"
        ]
        single["nonintrinsic_cells"] = excess["nonintrinsic_cells"]
    return sections


def run_demo(config=None):
    """Runs the demo and returns its report (also written as JSON).

    Example:

    >>> report = run_demo(DemoConfig(num_train=256, num_test=128,
    ...     factor_epochs=1, verbose=0,
    ...     output_dir=str(tmp_path)))                    # doctest: +SKIP
    >>> sorted(report["tasks"])                           # doctest: +SKIP
    ['orientation', 'pos_x', 'pos_y', 'scale', 'shape']
    """
    config = config or DemoConfig()
    check_config(config)
    keras.utils.set_random_seed(config.seed)
    os.makedirs(config.output_dir, exist_ok=True)
    wall_start = time.perf_counter()
    train_ds, test_ds = dsprites_splits(config)

    teacher, teacher_info = get_teacher(config)
    teacher.save(os.path.join(config.output_dir, TEACHER_FILE))

    logger.info("Factorizing (%d epochs).", config.factor_epochs)
    factorizer = build_factorizer(teacher, config)
    factorizer.compile(optimizer=optimizer_for(config, config.factor_epochs))
    monitor = CommonCollapseMonitor()
    factor_seconds, factor_rate = _timed_fit(
        factorizer,
        train_ds,
        config.factor_epochs,
        config,
        validation_data=test_ds,
        callbacks=[monitor],
    )

    models = {"teacher": teacher, "factor networks": factorizer}
    single_task, single_seconds = None, None
    if config.single_task_epochs:
        logger.info(
            "Training the single-task baseline (%d epochs).",
            config.single_task_epochs,
        )
        single_task, single_seconds = train_single_task_networks(
            teacher, train_ds, config
        )
        models["single-task networks"] = single_task
    kd_seconds = None
    if config.kd_epochs:
        logger.info("Training the KD baseline (%d epochs).", config.kd_epochs)
        models["KD student"], kd_seconds = train_kd_student(
            teacher, train_ds, config
        )
        models["KD student"].save(
            os.path.join(config.output_dir, KD_STUDENT_FILE)
        )
    logger.info("Evaluating.")
    accuracies, orientation = evaluate_predictions(models, test_ds)
    # A fresh train split: its first pass is the seeded epoch-0 order, not
    # the order after training, so `kfactor evaluate` reads the same codes.
    disentanglement, common, transfer = evaluate_factorization(
        factorizer,
        accuracies["teacher"],
        dsprites_splits(config)[0],
        test_ds,
        config,
    )
    if single_task is not None:
        disentanglement["single_task_leakage"] = single_task_leakage(
            single_task,
            disentanglement,
            dsprites_splits(config)[0],
            test_ds,
            config,
        )
    figures = plots.report_figures(
        disentanglement,
        accuracies,
        config.output_dir,
        config.latent_dim,
        transfer=transfer,
    )
    columns = {
        "teacher_accuracy": "teacher",
        "factor_accuracy": "factor networks",
        "single_task_accuracy": "single-task networks",
        "kd_student_accuracy": "KD student",
    }
    report = {
        "config": dataclasses.asdict(config),
        "num_train_images": config.num_train,
        "num_test_images": config.num_test,
        "teacher": teacher_info,
        "tasks": {
            task: {
                key: accuracies[name][task]
                for key, name in columns.items()
                if name in accuracies
            }
            for task in factorizer.task_names
        },
        "orientation_accuracy": orientation,
        "common_factor": {
            **common,
            "collapse_warning": monitor.collapsed_at is not None,
        },
        "disentanglement": disentanglement,
        "transfer": transfer,
        "figures": figures,
        "teacher_train_seconds": teacher_info["train_seconds"],
        "factorization_seconds": factor_seconds,
        "factorization_images_per_second": factor_rate,
        "single_task_train_seconds": single_seconds,
        "kd_student_train_seconds": kd_seconds,
    }
    logger.info("Saving, assembling and exporting the factors.")
    probe_images = next(iter(test_ds))[0][:64]
    published = publish_factors(
        factorizer,
        config.output_dir,
        test_accuracy=accuracies["factor networks"],
        probe_images=probe_images,
        overwrite=True,
    )
    for key in (
        "factors_dir",
        "export_dir",
        "assembled_max_abs_diff",
        "export_max_abs_diff",
    ):
        report[key] = published[key]
    report["wall_seconds"] = time.perf_counter() - wall_start
    report["peak_rss_bytes"] = peak_rss_bytes()
    write_report(report, config.output_dir)
    return report


def peak_rss_bytes():
    """Peak resident memory of this process so far (Linux/macOS units)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def write_report(report, output_dir):
    path = os.path.join(output_dir, REPORT_FILE)
    with open(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    return path


#: Optional baseline columns of the accuracy table: report key -> header.
BASELINE_COLUMNS = {
    "single_task_accuracy": "single-task",
    "kd_student_accuracy": "KD student",
}


def format_table(report):
    """The per-task accuracy table and headline scores, as Markdown."""
    baselines = [
        key
        for key in BASELINE_COLUMNS
        if all(key in v for v in report["tasks"].values())
    ]
    header = "".join(f" {BASELINE_COLUMNS[k]} |" for k in baselines)
    lines = [
        f"| task | teacher |{header} factor network | factor - teacher |",
        "|---|---|" + "---|" * len(baselines) + "---|---|",
    ]
    for task, scores in report["tasks"].items():
        teacher, factor = scores["teacher_accuracy"], scores["factor_accuracy"]
        cells = "".join(f" {scores[k]:.4f} |" for k in baselines)
        lines.append(
            f"| {task} | {teacher:.4f} |{cells} {factor:.4f} | "
            f"{100 * (factor - teacher):+.2f} pts |"
        )
    if "orientation_accuracy" in report:
        lines += ["", "| orientation | raw | up to symmetry |", "|---|---|---|"]
        lines += [
            f"| {name} | {v['raw']:.4f} | {v['symmetry_aware']:.4f} |"
            for name, v in report["orientation_accuracy"].items()
        ]
    if "common_factor" in report:
        lines += ["", common_factor_table(report["common_factor"])]
    if "transfer" in report:
        lines += ["", transfer_table(report["transfer"])]
    if "probe_mi" in report.get("disentanglement", {}):
        lines += ["", probe_mi_table(report["disentanglement"]["probe_mi"])]
    if "disentanglement" in report:
        lines += ["", "| score | value |", "|---|---|"]
        lines += [
            f"| {name} | {value:.4f} |"
            for name, value in summary_rows(report["disentanglement"])
        ]
    return "\n".join(lines)


def transfer_table(transfer):
    """The transfer report as Markdown: frozen representations probed on
    every factor, held-out factors marked."""
    names = transfer["representations"]
    lines = [
        "| factor | " + " | ".join(names) + " | chance |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for factor, row in transfer["factors"].items():
        label = f"{factor} (held out)" if row["held_out"] else factor
        cells = " | ".join(f"{row[n]:.4f}" for n in names)
        lines.append(f"| {label} | {cells} | {row['chance']:.4f} |")
    return "\n".join(lines)


def probe_mi_table(section):
    """The probe MI lower bound (nats) of every block on every factor."""
    factors = section["factor_names"]
    lines = [
        "| MI lower bound [nats] | " + " | ".join(factors) + " |",
        "|---|" + "---|" * len(factors),
        "| H(factor) | "
        + " | ".join(f"{h:.2f}" for h in section["entropy"])
        + " |",
    ]
    for block, row in zip(section["block_names"], section["matrix"]):
        lines.append(
            f"| {block} | " + " | ".join(f"{v:.2f}" for v in row) + " |"
        )
    return "\n".join(lines)


def common_factor_table(common):
    """The `common_factor` section as Markdown: alive, informative, used."""
    lines = [
        "| common factor | value |",
        "|---|---|",
        f"| mean pairwise cosine | {common['mean_pairwise_cosine']:.3f} |",
        f"| participation ratio | {common['participation_ratio']:.2f} |",
        "| accuracy drop, z_common -> its mean (avg over tasks) | "
        f"{100 * common['mean_replacement_drop']:.1f} pts |",
    ]
    for factor, probe in common["probes"].items():
        teacher = probe.get("teacher_accuracy")
        versus = f" (teacher {teacher:.4f})" if teacher is not None else ""
        lines.append(
            f"| linear probe z_common -> {factor} | "
            f"{probe['accuracy']:.4f}{versus} |"
        )
    return "\n".join(lines)


__all__ = [
    "BASELINE_COLUMNS",
    "KD_STUDENT_FILE",
    "KD_STUDENT_WIDTH_MULTIPLIER",
    "LEAKAGE_KEYS",
    "PRETRAINED_DIR",
    "PRETRAINED_TEACHER",
    "PRETRAINED_TEACHER_INFO",
    "REPORT_FILE",
    "TEACHER_FIELDS",
    "TEACHER_FILE",
    "DemoConfig",
    "build_factorizer",
    "build_single_task_networks",
    "build_teacher",
    "check_config",
    "check_pretrained_teacher",
    "code_reader",
    "collect_split_codes",
    "common_factor_table",
    "dsprites_splits",
    "encoder_builder",
    "evaluate_accuracies",
    "evaluate_codes",
    "evaluate_factorization",
    "evaluate_predictions",
    "evaluate_readers",
    "format_table",
    "get_teacher",
    "leakage_sections",
    "load_pretrained_teacher",
    "numpy_head",
    "optimizer_for",
    "peak_rss_bytes",
    "probe_mi_fits",
    "probe_mi_table",
    "random_encoder_reader",
    "run_demo",
    "single_task_leakage",
    "split_indices",
    "steps_per_epoch",
    "teacher_config",
    "teacher_indices",
    "train_kd_student",
    "train_single_task_networks",
    "train_teacher",
    "transfer_table",
    "write_report",
]
