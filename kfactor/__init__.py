"""kfactor: Knowledge Factorization for Keras 3 (TensorFlow backend).

Factorize a frozen multi-task teacher into one common factor and one factor
network per task, with the InfoMax-Bottleneck objective of Yang, Ye and Wang,
"Factorizing Knowledge in Neural Networks" (ECCV 2022).
"""

from kfactor.backend import ensure_tensorflow_backend
from kfactor.backend import prefer_onednn_kernels
from kfactor.backend import quiet_tensorflow_start_up

prefer_onednn_kernels()
ensure_tensorflow_backend()
with quiet_tensorflow_start_up():  # the `kfactor` command only
    import tensorflow  # noqa: F401

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
from kfactor.assembly import check_assembly
from kfactor.baseline import DistilledStudent
from kfactor.baseline import SingleTaskNetworks
from kfactor.distribute import distributed_fit
from kfactor.export import check_export
from kfactor.export import export_for_serving
from kfactor.factorizer import Factorizer
from kfactor.health import CommonCollapseMonitor
from kfactor.health import CommonFactorCollapseWarning
from kfactor.layers import CommonFactor
from kfactor.layers import ProjectionMLP
from kfactor.layers import TaskCode
from kfactor.layers import TaskFactor
from kfactor.losses import imb_objective
from kfactor.manifest import FactorFormatError
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
    "CommonCollapseMonitor",
    "CommonFactor",
    "CommonFactorCollapseWarning",
    "DistilledStudent",
    "FactorFormatError",
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
    "check_assembly",
    "check_export",
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
