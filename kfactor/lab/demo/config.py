"""The demo's configuration: `DemoConfig`, its file names and its splits.

`DemoConfig` holds the sizes and schedule of a demo run; the functions here
turn it into the seeded, disjoint procedural dSprites splits that the
demo (`kfactor.lab.demo.run`) and its re-scoring (`kfactor.lab.demo.rescoring`)
both read.
"""

import dataclasses

from kfactor.lab import datasets as data_lib
from kfactor.objective import mi as mi_lib
from kfactor.zoo.simple_conv import NARROW_WIDTHS

#: The files a demo run writes in its `output_dir`.
REPORT_FILE = "report.json"
TEACHER_FILE = "teacher.keras"
KD_STUDENT_FILE = "kd_student.keras"
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


@dataclasses.dataclass
class DemoConfig:
    """Sizes and schedule of the demo (defaults fit 15 min on 2 cores).

    The teacher is the pretrained one shipped in `kfactor/lab/pretrained/`
    (`train_teacher=True` retrains it with the `teacher_*` fields: that is
    how the shipped one was made). It is a narrow SimpleConv64 with batch
    normalization, trained with per-task loss weights `1 / log K` and a
    warm-up + cosine Adam schedule (`kfactor.lab.teacher`) on
    `teacher_num_train` images drawn around the test split, so it never saw
    a held-out image.

    The factorization uses batch-normalized encoders of the same widths,
    InfoNCE for the InfoMax term (the reference's `"dv"` formula collapses
    the common code) and Gaussian task codes (VIB) that start narrow
    (`initial_log_var`) under the bottleneck weight `beta`: the noise of
    a squeezed task code is what makes each factor network read the common
    code. Every factor encoder starts at random, as in the paper and its
    reference code (whose common network often differs from the teacher):
    `common_from_teacher=True` copies the teacher's backbone into the
    common encoder instead, a warm start that is a deviation from the
    method and that no claim of the default report rests on. The
    objective is the `Factorizer`'s default unless `infomax_layers`,
    `infomax_estimator` or the `*_weight` fields say otherwise.
    `single_task_epochs` trains the "knows only task k" baseline
    (independent single-task networks of the same encoder and code size)
    and `kd_epochs` a KD student of the factor networks' total size, both
    from scratch for as many steps, so that the factor networks' accuracy
    and leakage have fair references. Both are
    shipped trained for the default fields, as the teacher is
    (`kfactor.lab.demo.baselines`); `train_baselines=True` trains them in the
    run, and a run whose fields differ from the shipped ones' must.
    `project_codes=True` keeps each task code's mean, after training, to
    the principal directions its factor network reads
    (`kfactor.training.project_task_codes`, fitted on train images), and
    the single-task networks' codes the same way
    (`kfactor.lab.baselines.project_single_task_codes`), so that the
    leakage comparison reads both projected; the report's `code_subspaces`
    and `single_task_code_subspaces` say what each kept.
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
    common_from_teacher: bool = False
    infomax_layers: tuple = ()
    infomax_estimator: str = None
    hint_weight: float = None
    queue_weight: float = None
    adversary_weight: float = None
    adversary_mode: str = None
    held_out: tuple = ()
    single_task_epochs: int = 5
    train_baselines: bool = False
    train_teacher: bool = False
    teacher_num_train: int = 150000
    teacher_epochs: int = 24
    teacher_batch_size: int = 128
    teacher_learning_rate: float = 3e-3
    kd_epochs: int = 5
    eval_train_examples: int = 10000
    eval_test_examples: int = 5000
    dci: bool = False
    project_codes: bool = False
    seed: int = 0
    training_seed: int = None
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
        self.infomax_layers = tuple(self.infomax_layers)
        for name in ("hint_weight", "queue_weight", "adversary_weight"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(
                    f"Expected {name} >= 0 or None (the Factorizer's "
                    f"default). Received: {name}={value}"
                )
        if self.infomax_estimator in ("", "None"):
            self.infomax_estimator = None
        if (
            self.infomax_estimator is not None
            and self.infomax_estimator not in mi_lib.ESTIMATORS
        ):
            raise ValueError(
                f"Expected infomax_estimator in {sorted(mi_lib.ESTIMATORS)} "
                "or None (the Factorizer's default). Received: "
                f"infomax_estimator={self.infomax_estimator!r}"
            )
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
    def run_seed(self):
        """The seed of initialization, training order and noise:
        `training_seed`, or `seed` when it is None. `seed` alone decides the
        splits (and so which pretrained teacher fits), so runs that differ
        only in `training_seed` factorize the same teacher on the same
        images."""
        return self.seed if self.training_seed is None else self.training_seed

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
    iterator over a repeated dataset does not. (The likely cause, found
    later: an iterator's teardown waited for tf.data's autotuner, now off
    in kfactor's pipelines; see `kfactor.data.prefetch`.)
    """
    train, test = split_indices(config)
    train_ds = data_lib.dsprites_dataset(
        train,
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.run_seed,
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


def teacher_config(config):
    """The fields of `config` that decide the teacher (`TEACHER_FIELDS`)."""
    values = dataclasses.asdict(config)
    return {
        name: list(values[name]) if name == "widths" else values[name]
        for name in TEACHER_FIELDS
    }


__all__ = [
    "KD_STUDENT_FILE",
    "REPORT_FILE",
    "TEACHER_FIELDS",
    "TEACHER_FILE",
    "DemoConfig",
    "dsprites_splits",
    "split_indices",
    "steps_per_epoch",
    "teacher_config",
    "teacher_indices",
]
