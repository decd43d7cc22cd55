"""Evaluation: code and prediction readers, the report, figures."""

from kfactor.evaluation import codes
from kfactor.evaluation import common_report
from kfactor.evaluation import plots
from kfactor.evaluation import predictions
from kfactor.evaluation import report
from kfactor.evaluation.codes import collect_codes
from kfactor.evaluation.codes import saved_factor_readers
from kfactor.evaluation.common_report import common_factor_report
from kfactor.evaluation.common_report import transfer_report
from kfactor.evaluation.plots import report_figures
from kfactor.evaluation.predictions import collect_predictions
from kfactor.evaluation.predictions import evaluate_predictions
from kfactor.evaluation.predictions import task_accuracies
from kfactor.evaluation.report import disentanglement_report

__all__ = [
    "codes",
    "collect_codes",
    "collect_predictions",
    "common_factor_report",
    "common_report",
    "disentanglement_report",
    "evaluate_predictions",
    "plots",
    "predictions",
    "report",
    "report_figures",
    "saved_factor_readers",
    "task_accuracies",
    "transfer_report",
]
