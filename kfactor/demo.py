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
from kfactor import plots
from kfactor.baseline import DistilledStudent
from kfactor.codes import collect_codes
from kfactor.codes import factorizer_readers
from kfactor.evaluation import collect_predictions
from kfactor.evaluation import task_accuracies
from kfactor.factorizer import Factorizer
from kfactor.layers import TaskFactor
from kfactor.models import NARROW_WIDTHS
from kfactor.models import multitask_teacher
from kfactor.models import simple_conv64
from kfactor.publish import publish_factors
from kfactor.report import disentanglement_report
from kfactor.report import summary_rows
from kfactor.teacher import compile_teacher

import keras

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"
TEACHER_FILE = "teacher.keras"
KD_STUDENT_FILE = "kd_student.keras"
#: The KD student's widths are this much wider than the teacher's: about
#: twice the parameters, the size of one factor network (common + task).
KD_STUDENT_WIDTH_MULTIPLIER = 1.4


@dataclasses.dataclass
class DemoConfig:
    """Sizes and schedule of the demo (defaults fit 15 min on 2 cores).

    The narrow teacher needs about 5,000 steps of batch 64 before it tells
    the three shapes apart (the other tasks come earlier), hence 50,000
    images, batch 64 and 8 teacher epochs (6,250 steps; it may still miss
    `shape` for some seeds). Factorization takes 4 epochs: `scale` is the
    last task a factor network learns (0.83 after 2 epochs, 0.97 after 3,
    0.98 after 4 on 60,000 images). Task codes are deterministic with the
    batch-moment InfoMin, the variant behind the reference code's published
    results: with Gaussian codes (VIB) the five-task factorization had not
    learned `shape` after 1,800 steps (0.40, chance 0.33), deterministic
    codes reached 0.76 after 1,200 (both measured on this teacher;
    `variational=True` gives the VIB variant). The KD baseline is off by
    default (`kd_epochs=2` adds it: about 3 more minutes).
    """

    num_train: int = 50000
    num_test: int = 5000
    batch_size: int = 64
    teacher_epochs: int = 8
    factor_epochs: int = 4
    learning_rate: float = 1e-3
    widths: tuple = NARROW_WIDTHS
    latent_dim: int = 10
    variational: bool = False
    kd_epochs: int = 0
    eval_train_examples: int = 10000
    eval_test_examples: int = 5000
    dci: bool = False
    seed: int = 0
    output_dir: str = "kfactor_runs/demo"
    verbose: int = 1

    def __post_init__(self):
        for name in ("num_train", "num_test", "batch_size", "latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"Expected {name} >= 1. Received: {name}="
                    f"{getattr(self, name)}"
                )
        for name in ("teacher_epochs", "factor_epochs", "kd_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"Expected {name} >= 0. Received: {name}="
                    f"{getattr(self, name)}"
                )
        self.widths = tuple(int(w) for w in self.widths)


def dsprites_splits(config):
    """The train and test datasets of the demo (disjoint, seeded).

    The train dataset repeats (a new permutation every pass; fit it with
    `steps_per_epoch(config)`); the test dataset is one ordered pass.
    Keras's `fit` makes a new iterator of a finite dataset every epoch, and
    on 2 CPU cores the first step of about half the epochs then stalled for
    16-20 s (measured: teacher epochs of 40 s instead of 22 s); one
    iterator over a repeated dataset does not.
    """
    dsprites = data_lib.ProceduralDSprites(seed=config.seed)
    train, test = dsprites.split(config.num_train, config.num_test)
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


def steps_per_epoch(config):
    """Batches in one pass over the demo's train split."""
    return -(-config.num_train // config.batch_size)


def build_teacher(config, name="teacher", width_multiplier=1.0):
    encoder = simple_conv64(
        config.latent_dim,
        widths=config.widths,
        width_multiplier=width_multiplier,
        name=f"{name}_encoder",
    )
    return multitask_teacher(
        data_lib.DSPRITES_NUM_CLASSES, encoder=encoder, name=name
    )


def build_factorizer(
    teacher, config, task_names=None, variational=None, **options
):
    """The demo's factorizer: narrow SimpleConv64 common and task encoders.

    Args:
        teacher: the dSprites teacher.
        config: a `DemoConfig` (widths, latent size).
        task_names: the tasks to factorize (all five by default).
        variational: Gaussian (True) or deterministic task codes; by
            default `config.variational`.
        **options: `Factorizer` / `imb_objective` options.
    """

    def encoder(latent_dim, name):
        return simple_conv64(latent_dim, widths=config.widths, name=name)

    task_names = task_names or data_lib.DSPRITES_TASKS
    tasks = {
        t: TaskFactor(
            encoder(None, f"{t}_encoder"),
            variational=(
                config.variational if variational is None else variational
            ),
            name=f"task_{t}",
        )
        for t in task_names
    }
    return Factorizer(
        teacher,
        common=encoder(config.latent_dim, "common_encoder"),
        tasks=tasks,
        **options,
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
    distilled.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    seconds, _ = _timed_fit(distilled, train_ds, config.kd_epochs, config)
    return student, seconds


def evaluate_accuracies(models, test_ds):
    """`{model name: {task: test accuracy}}`."""
    logits, labels = collect_predictions(models, test_ds)
    return {name: task_accuracies(v, labels) for name, v in logits.items()}


def evaluate_codes(factorizer, train_ds, test_ds, config):
    """The disentanglement report of the factorizer's codes."""
    return evaluate_readers(
        factorizer_readers(factorizer),
        factorizer.task_names,
        train_ds,
        test_ds,
        config,
    )


def evaluate_readers(readers, task_names, train_ds, test_ds, config):
    """The disentanglement report of the codes that `readers` read.

    `readers` (see `kfactor.codes`) reads the teacher, common and each of
    `task_names` codes.
    """
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
    return disentanglement_report(
        *train,
        *test,
        task_names=task_names,
        factor_names=factor_names,
        dci=config.dci,
        random_state=config.seed,
    )


def run_demo(config=None):
    """Runs the demo and returns its report (also written as JSON).

    Example:

    >>> report = run_demo(DemoConfig(num_train=256, num_test=128,
    ...     teacher_epochs=1, factor_epochs=1, verbose=0,
    ...     output_dir=str(tmp_path)))                    # doctest: +SKIP
    >>> sorted(report["tasks"])                           # doctest: +SKIP
    ['orientation', 'pos_x', 'pos_y', 'scale', 'shape']
    """
    config = config or DemoConfig()
    keras.utils.set_random_seed(config.seed)
    os.makedirs(config.output_dir, exist_ok=True)
    wall_start = time.perf_counter()
    train_ds, test_ds = dsprites_splits(config)

    logger.info("Training the teacher (%d epochs).", config.teacher_epochs)
    teacher = compile_teacher(
        build_teacher(config), keras.optimizers.Adam(config.learning_rate)
    )
    teacher_seconds, teacher_rate = _timed_fit(
        teacher,
        train_ds,
        config.teacher_epochs,
        config,
        validation_data=test_ds,
    )
    teacher.save(os.path.join(config.output_dir, TEACHER_FILE))

    logger.info("Factorizing (%d epochs).", config.factor_epochs)
    factorizer = build_factorizer(teacher, config)
    factorizer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    factor_seconds, factor_rate = _timed_fit(
        factorizer,
        train_ds,
        config.factor_epochs,
        config,
        validation_data=test_ds,
    )

    models = {"teacher": teacher, "factor networks": factorizer}
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
    accuracies = evaluate_accuracies(models, test_ds)
    # A fresh train split: its first pass is the seeded epoch-0 order, not
    # the order after training, so `kfactor evaluate` reads the same codes.
    disentanglement = evaluate_codes(
        factorizer, dsprites_splits(config)[0], test_ds, config
    )
    figures = plots.report_figures(
        disentanglement, accuracies, config.output_dir, config.latent_dim
    )
    report = {
        "config": dataclasses.asdict(config),
        "num_train_images": config.num_train,
        "num_test_images": config.num_test,
        "tasks": {
            task: {
                "teacher_accuracy": accuracies["teacher"][task],
                "factor_accuracy": accuracies["factor networks"][task],
                **(
                    {"kd_student_accuracy": accuracies["KD student"][task]}
                    if "KD student" in accuracies
                    else {}
                ),
            }
            for task in factorizer.task_names
        },
        "disentanglement": disentanglement,
        "figures": figures,
        "teacher_train_seconds": teacher_seconds,
        "teacher_train_images_per_second": teacher_rate,
        "factorization_seconds": factor_seconds,
        "factorization_images_per_second": factor_rate,
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


def format_table(report):
    """The per-task accuracy table and headline scores, as Markdown."""
    kd = all("kd_student_accuracy" in v for v in report["tasks"].values())
    lines = [
        "| task | teacher |"
        + (" KD student |" if kd else "")
        + " factor network | factor - teacher |",
        "|---|---|" + ("---|" if kd else "") + "---|---|",
    ]
    for task, scores in report["tasks"].items():
        teacher, factor = scores["teacher_accuracy"], scores["factor_accuracy"]
        kd_cell = f" {scores['kd_student_accuracy']:.4f} |" if kd else ""
        lines.append(
            f"| {task} | {teacher:.4f} |{kd_cell} {factor:.4f} | "
            f"{100 * (factor - teacher):+.2f} pts |"
        )
    if "disentanglement" in report:
        lines += ["", "| score | value |", "|---|---|"]
        lines += [
            f"| {name} | {value:.4f} |"
            for name, value in summary_rows(report["disentanglement"])
        ]
    return "\n".join(lines)
