"""Training: Factorizer, baselines, callbacks, teacher recipe, distribution,
tuning."""

from kfactor.training import baselines
from kfactor.training import callbacks
from kfactor.training import distribute
from kfactor.training import factorizer
from kfactor.training import optimizers
from kfactor.training import teacher
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

__all__ = [
    "CommonCollapseMonitor",
    "CommonFactorCollapseWarning",
    "DistilledStudent",
    "FactorizationHyperModel",
    "Factorizer",
    "FusedAdam",
    "SingleTaskNetworks",
    "baselines",
    "callbacks",
    "compile_teacher",
    "distribute",
    "distributed_fit",
    "factorizer",
    "optimizers",
    "teacher",
    "tuning",
    "warmup_cosine_adam",
]
