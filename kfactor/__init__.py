"""kfactor: Knowledge Factorization for Keras 3 (TensorFlow backend).

Factorize a frozen multi-task teacher into one common factor and one factor
network per task, with the InfoMax-Bottleneck objective of Yang, Ye and Wang,
"Factorizing Knowledge in Neural Networks" (ECCV 2022).
"""

from kfactor.backend import ensure_tensorflow_backend
from kfactor.backend import prefer_onednn_kernels

prefer_onednn_kernels()
ensure_tensorflow_backend()

# ruff: noqa: E402
from kfactor import applications
from kfactor import data
from kfactor import distribute
from kfactor import health
from kfactor import losses
from kfactor import metrics
from kfactor import mi
from kfactor import tuning
from kfactor import validation
from kfactor.applications import applications_encoder
from kfactor.applications import as_task_teacher
from kfactor.applications import stage_layer_names
from kfactor.assembly import assemble
from kfactor.baseline import DistilledStudent
from kfactor.baseline import SingleTaskNetworks
from kfactor.distribute import distributed_fit
from kfactor.export import export_for_serving
from kfactor.factorizer import Factorizer
from kfactor.health import CommonCollapseMonitor
from kfactor.health import CommonFactorCollapseWarning
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
from kfactor.teacher import compile_teacher
from kfactor.teacher import warmup_cosine_adam
from kfactor.tuning import FactorizationHyperModel
from kfactor.version import __version__
from kfactor.wrn import wide_resnet

__all__ = [
    "FULL_WIDTHS",
    "NARROW_WIDTHS",
    "CommonCollapseMonitor",
    "CommonFactor",
    "CommonFactorCollapseWarning",
    "DistilledStudent",
    "FactorizationHyperModel",
    "Factorizer",
    "ProjectionMLP",
    "SavedFactor",
    "SingleTaskNetworks",
    "TaskCode",
    "TaskFactor",
    "__version__",
    "applications",
    "applications_encoder",
    "as_task_teacher",
    "assemble",
    "compile_teacher",
    "data",
    "distribute",
    "distributed_fit",
    "export_for_serving",
    "health",
    "imb_objective",
    "load_factors",
    "losses",
    "metrics",
    "mi",
    "multitask_teacher",
    "publish_factors",
    "simple_conv64",
    "stage_layer_names",
    "tuning",
    "validation",
    "warmup_cosine_adam",
    "wide_resnet",
]
