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
from kfactor import data
from kfactor import metrics
from kfactor import validation
from kfactor.factors.assembly import assemble
from kfactor.factors.assembly import check_assembly
from kfactor.factors.export import check_export
from kfactor.factors.export import export_for_serving
from kfactor.factors.graph_check import UntrustedFactorError
from kfactor.factors.manifest import FactorFormatError
from kfactor.factors.plugins import load_factors
from kfactor.factors.publish import publish_factors
from kfactor.factors.saved_factor import SavedFactor
from kfactor.layers.factor_layers import CommonFactor
from kfactor.layers.factor_layers import ProjectionMLP
from kfactor.layers.factor_layers import TaskCode
from kfactor.layers.factor_layers import TaskFactor
from kfactor.objective import health
from kfactor.objective import losses
from kfactor.objective import mi
from kfactor.objective.imb import imb_objective
from kfactor.training import distribute
from kfactor.training import tuning
from kfactor.training.baselines import DistilledStudent
from kfactor.training.baselines import SingleTaskNetworks
from kfactor.training.callbacks import CommonCollapseMonitor
from kfactor.training.callbacks import CommonFactorCollapseWarning
from kfactor.training.distribute import distributed_fit
from kfactor.training.factorizer import Factorizer
from kfactor.training.optimizers import FusedAdam
from kfactor.training.teacher import compile_teacher
from kfactor.training.teacher import warmup_cosine_adam
from kfactor.training.tuning import FactorizationHyperModel
from kfactor.version import __version__
from kfactor.zoo import applications
from kfactor.zoo.applications import applications_encoder
from kfactor.zoo.applications import as_task_teacher
from kfactor.zoo.applications import stage_layer_names
from kfactor.zoo.simple_conv import multitask_teacher
from kfactor.zoo.simple_conv import simple_conv64
from kfactor.zoo.wrn import wide_resnet

__all__ = [
    "CommonCollapseMonitor",
    "CommonFactor",
    "CommonFactorCollapseWarning",
    "DistilledStudent",
    "FactorFormatError",
    "FactorizationHyperModel",
    "Factorizer",
    "FusedAdam",
    "ProjectionMLP",
    "SavedFactor",
    "SingleTaskNetworks",
    "TaskCode",
    "TaskFactor",
    "UntrustedFactorError",
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
