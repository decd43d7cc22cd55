"""The InfoMax-Bottleneck objective: loss terms, MI bounds, health measures."""

from kfactor.objective import cross_task
from kfactor.objective import divergences
from kfactor.objective import health
from kfactor.objective import imb
from kfactor.objective import losses
from kfactor.objective import mi
from kfactor.objective import transfer
from kfactor.objective.cross_task import CrossTaskAdversary
from kfactor.objective.cross_task import GradientReversal
from kfactor.objective.health import mean_pairwise_cosine
from kfactor.objective.health import participation_ratio
from kfactor.objective.health import task_code_kl
from kfactor.objective.imb import imb_objective
from kfactor.objective.losses import AuxTaskLoss
from kfactor.objective.losses import FactorLoss
from kfactor.objective.losses import FactorOutputs
from kfactor.objective.losses import InfoMaxLoss
from kfactor.objective.losses import InfoMinLoss
from kfactor.objective.losses import LogitsKD
from kfactor.objective.losses import SoftTargetKD
from kfactor.objective.losses import TaskLoss
from kfactor.objective.losses import total_loss
from kfactor.objective.mi import get_estimator
from kfactor.objective.mi import info_nce
from kfactor.objective.transfer import HintLoss
from kfactor.objective.transfer import QueueInfoMaxLoss

__all__ = [
    "AuxTaskLoss",
    "CrossTaskAdversary",
    "FactorLoss",
    "FactorOutputs",
    "GradientReversal",
    "HintLoss",
    "InfoMaxLoss",
    "InfoMinLoss",
    "LogitsKD",
    "QueueInfoMaxLoss",
    "SoftTargetKD",
    "TaskLoss",
    "cross_task",
    "divergences",
    "get_estimator",
    "health",
    "imb",
    "imb_objective",
    "info_nce",
    "losses",
    "mean_pairwise_cosine",
    "mi",
    "participation_ratio",
    "task_code_kl",
    "total_loss",
    "transfer",
]
