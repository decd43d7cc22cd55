"""Training: the Factorizer, its step, callbacks, optimizer and
distribution."""

from kfactor.training import callbacks
from kfactor.training import distribute
from kfactor.training import factorizer
from kfactor.training import optimizers
from kfactor.training.callbacks import CommonCollapseMonitor
from kfactor.training.callbacks import CommonFactorCollapseWarning
from kfactor.training.distribute import distributed_fit
from kfactor.training.factorizer import Factorizer
from kfactor.training.optimizers import FusedAdam

__all__ = [
    "CommonCollapseMonitor",
    "CommonFactorCollapseWarning",
    "Factorizer",
    "FusedAdam",
    "callbacks",
    "distribute",
    "distributed_fit",
    "factorizer",
    "optimizers",
]
