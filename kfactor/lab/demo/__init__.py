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

from kfactor.lab.demo.artefacts import DATA_FIELDS
from kfactor.lab.demo.artefacts import is_run_dir
from kfactor.lab.demo.artefacts import run_config
from kfactor.lab.demo.baselines import PRETRAINED_BASELINES_INFO
from kfactor.lab.demo.baselines import check_config
from kfactor.lab.demo.baselines import get_baselines
from kfactor.lab.demo.config import KD_STUDENT_FILE
from kfactor.lab.demo.config import REPORT_FILE
from kfactor.lab.demo.config import TEACHER_FILE
from kfactor.lab.demo.config import DemoConfig
from kfactor.lab.demo.config import dsprites_splits
from kfactor.lab.demo.config import steps_per_epoch
from kfactor.lab.demo.config import teacher_config
from kfactor.lab.demo.networks import KD_STUDENT_WIDTH_MULTIPLIER
from kfactor.lab.demo.networks import build_factorizer
from kfactor.lab.demo.networks import build_single_task_networks
from kfactor.lab.demo.networks import build_teacher
from kfactor.lab.demo.networks import optimizer_for
from kfactor.lab.demo.networks import train_kd_student
from kfactor.lab.demo.networks import train_single_task_networks
from kfactor.lab.demo.report import write_report
from kfactor.lab.demo.rescoring import EVALUATION_SUBDIR
from kfactor.lab.demo.rescoring import evaluate_run
from kfactor.lab.demo.rescoring import evaluate_saved
from kfactor.lab.demo.rescoring import evaluate_sources
from kfactor.lab.demo.run import run_demo
from kfactor.lab.demo.sections import code_reader
from kfactor.lab.demo.sections import collect_split_codes
from kfactor.lab.demo.sections import evaluate_factorization
from kfactor.lab.demo.sections import evaluate_readers
from kfactor.lab.demo.sections import leakage_sections
from kfactor.lab.demo.sections import numpy_head
from kfactor.lab.demo.sections import random_encoder_reader
from kfactor.lab.demo.tables import format_table
from kfactor.lab.demo.teacher import PRETRAINED_DIR
from kfactor.lab.demo.teacher import PRETRAINED_TEACHER
from kfactor.lab.demo.teacher import PRETRAINED_TEACHER_INFO
from kfactor.lab.demo.teacher import get_teacher
from kfactor.lab.demo.teacher import load_pretrained_teacher
from kfactor.lab.demo.teacher import train_teacher

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
