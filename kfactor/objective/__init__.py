"""The InfoMax-Bottleneck objective: loss terms, MI bounds, health measures."""

from kfactor.objective import divergences
from kfactor.objective import health
from kfactor.objective import losses
from kfactor.objective import mi
from kfactor.objective.health import mean_pairwise_cosine
from kfactor.objective.health import participation_ratio
from kfactor.objective.health import task_code_kl
from kfactor.objective.losses import AuxTaskLoss
from kfactor.objective.losses import FactorLoss
from kfactor.objective.losses import FactorOutputs
from kfactor.objective.losses import InfoMaxLoss
from kfactor.objective.losses import InfoMinLoss
from kfactor.objective.losses import LogitsKD
from kfactor.objective.losses import SoftTargetKD
from kfactor.objective.losses import TaskLoss
from kfactor.objective.losses import imb_objective
from kfactor.objective.losses import total_loss
from kfactor.objective.mi import get_estimator
from kfactor.objective.mi import info_nce

__all__ = [
    "AuxTaskLoss",
    "FactorLoss",
    "FactorOutputs",
    "InfoMaxLoss",
    "InfoMinLoss",
    "LogitsKD",
    "SoftTargetKD",
    "TaskLoss",
    "divergences",
    "get_estimator",
    "health",
    "imb_objective",
    "info_nce",
    "losses",
    "mean_pairwise_cosine",
    "mi",
    "participation_ratio",
    "task_code_kl",
    "total_loss",
]
