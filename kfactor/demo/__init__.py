"""The end-to-end demo: dSprites teacher -> factor networks -> report.

`run_demo(DemoConfig())` (`kfactor demo`) renders procedural dSprites,
loads the pretrained multi-task teacher (or trains one), factorizes it into
one common factor and a task factor per dSprites factor, scores both on the
held-out split and writes `report.json` in `output_dir`. `evaluate_run`
(`kfactor evaluate`) scores a finished run's saved artefacts again.

Modules, one concept each: `config` (the `DemoConfig` and its splits),
`networks` (builders and fits), `teacher` and `baselines` (pretrained or
trained),
`sections` (the report's sections), `report` (the part shared with the
re-scoring), `tables` (Markdown), `run` (`run_demo`), `artefacts` (a run
on disk, checked) and `rescoring` (`evaluate_run`, `evaluate_saved`,
`evaluate_sources`).
"""

from kfactor.demo.artefacts import DATA_FIELDS
from kfactor.demo.artefacts import is_run_dir
from kfactor.demo.artefacts import run_config
from kfactor.demo.baselines import PRETRAINED_BASELINES_INFO
from kfactor.demo.baselines import check_config
from kfactor.demo.baselines import get_baselines
from kfactor.demo.config import KD_STUDENT_FILE
from kfactor.demo.config import REPORT_FILE
from kfactor.demo.config import TEACHER_FILE
from kfactor.demo.config import DemoConfig
from kfactor.demo.config import dsprites_splits
from kfactor.demo.config import steps_per_epoch
from kfactor.demo.config import teacher_config
from kfactor.demo.networks import KD_STUDENT_WIDTH_MULTIPLIER
from kfactor.demo.networks import build_factorizer
from kfactor.demo.networks import build_single_task_networks
from kfactor.demo.networks import build_teacher
from kfactor.demo.networks import optimizer_for
from kfactor.demo.networks import train_kd_student
from kfactor.demo.networks import train_single_task_networks
from kfactor.demo.report import write_report
from kfactor.demo.rescoring import EVALUATION_SUBDIR
from kfactor.demo.rescoring import evaluate_run
from kfactor.demo.rescoring import evaluate_saved
from kfactor.demo.rescoring import evaluate_sources
from kfactor.demo.run import run_demo
from kfactor.demo.sections import code_reader
from kfactor.demo.sections import collect_split_codes
from kfactor.demo.sections import evaluate_factorization
from kfactor.demo.sections import evaluate_readers
from kfactor.demo.sections import leakage_sections
from kfactor.demo.sections import numpy_head
from kfactor.demo.sections import random_encoder_reader
from kfactor.demo.tables import format_table
from kfactor.demo.teacher import PRETRAINED_DIR
from kfactor.demo.teacher import PRETRAINED_TEACHER
from kfactor.demo.teacher import PRETRAINED_TEACHER_INFO
from kfactor.demo.teacher import get_teacher
from kfactor.demo.teacher import load_pretrained_teacher
from kfactor.demo.teacher import train_teacher

__all__ = [
    "DATA_FIELDS",
    "EVALUATION_SUBDIR",
    "KD_STUDENT_FILE",
    "KD_STUDENT_WIDTH_MULTIPLIER",
    "PRETRAINED_BASELINES_INFO",
    "PRETRAINED_DIR",
    "PRETRAINED_TEACHER",
    "PRETRAINED_TEACHER_INFO",
    "REPORT_FILE",
    "TEACHER_FILE",
    "DemoConfig",
    "build_factorizer",
    "build_single_task_networks",
    "build_teacher",
    "check_config",
    "code_reader",
    "collect_split_codes",
    "dsprites_splits",
    "evaluate_factorization",
    "evaluate_readers",
    "evaluate_run",
    "evaluate_saved",
    "evaluate_sources",
    "format_table",
    "get_baselines",
    "get_teacher",
    "is_run_dir",
    "leakage_sections",
    "load_pretrained_teacher",
    "numpy_head",
    "optimizer_for",
    "random_encoder_reader",
    "run_config",
    "run_demo",
    "steps_per_epoch",
    "teacher_config",
    "train_kd_student",
    "train_single_task_networks",
    "train_teacher",
    "write_report",
]
