"""Evaluation: code and prediction readers, the report, figures."""

from kfactor.lab.evaluation import codes
from kfactor.lab.evaluation import common_report
from kfactor.lab.evaluation import plots
from kfactor.lab.evaluation import predictions
from kfactor.lab.evaluation import report
from kfactor.lab.evaluation.codes import collect_codes
from kfactor.lab.evaluation.codes import saved_factor_readers
from kfactor.lab.evaluation.common_report import common_factor_report
from kfactor.lab.evaluation.common_report import transfer_report
from kfactor.lab.evaluation.plots import report_figures
from kfactor.lab.evaluation.predictions import collect_predictions
from kfactor.lab.evaluation.predictions import evaluate_predictions
from kfactor.lab.evaluation.predictions import task_accuracies
from kfactor.lab.evaluation.report import disentanglement_report

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
