"""kfactor: Knowledge Factorization for Keras 3 (TensorFlow backend).

Factorize a frozen multi-task teacher into one common factor and one factor
network per task, with the InfoMax-Bottleneck objective of Yang, Ye and Wang,
"Factorizing Knowledge in Neural Networks" (ECCV 2022).
"""

from kfactor.backend import ensure_tensorflow_backend

ensure_tensorflow_backend()

# ruff: noqa: E402
from kfactor import data
from kfactor import losses
from kfactor import metrics
from kfactor import mi
from kfactor.factorizer import Factorizer
from kfactor.layers import CommonFactor
from kfactor.layers import ProjectionMLP
from kfactor.layers import TaskCode
from kfactor.layers import TaskFactor
from kfactor.losses import imb_objective
from kfactor.models import FULL_WIDTHS
from kfactor.models import NARROW_WIDTHS
from kfactor.models import multitask_teacher
from kfactor.models import simple_conv64
from kfactor.version import __version__

__all__ = [
    "FULL_WIDTHS",
    "NARROW_WIDTHS",
    "CommonFactor",
    "Factorizer",
    "ProjectionMLP",
    "TaskCode",
    "TaskFactor",
    "__version__",
    "data",
    "imb_objective",
    "losses",
    "metrics",
    "mi",
    "multitask_teacher",
    "simple_conv64",
]
