"""Training: the Factorizer, its step, callbacks, optimizer and
distribution, and the task codes' projection after training."""

from kfactor.training import callbacks
from kfactor.training import code_subspace
from kfactor.training import distribute
from kfactor.training import factorizer
from kfactor.training import optimizers
from kfactor.training.callbacks import CommonCollapseMonitor
from kfactor.training.callbacks import CommonFactorCollapseWarning
from kfactor.training.code_subspace import CodeSubspace
from kfactor.training.code_subspace import project_task_codes
from kfactor.training.distribute import distributed_fit
from kfactor.training.factorizer import Factorizer
from kfactor.training.optimizers import FusedAdam

__all__ = [
    "CodeSubspace",
    "CommonCollapseMonitor",
    "CommonFactorCollapseWarning",
    "Factorizer",
    "FusedAdam",
    "callbacks",
    "code_subspace",
    "distribute",
    "distributed_fit",
    "factorizer",
    "optimizers",
    "project_task_codes",
]
