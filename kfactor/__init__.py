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
from kfactor.assembly import assemble
from kfactor.export import export_for_serving
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
from kfactor.plugins import load_factors
from kfactor.publish import publish_factors
from kfactor.saved_factor import SavedFactor
from kfactor.version import __version__

__all__ = [
    "FULL_WIDTHS",
    "NARROW_WIDTHS",
    "CommonFactor",
    "Factorizer",
    "ProjectionMLP",
    "SavedFactor",
    "TaskCode",
    "TaskFactor",
    "__version__",
    "assemble",
    "data",
    "export_for_serving",
    "imb_objective",
    "load_factors",
    "losses",
    "metrics",
    "mi",
    "multitask_teacher",
    "publish_factors",
    "simple_conv64",
]
