"""The part of the report that `kfactor demo` and `kfactor evaluate` share.

Both score models on the seeded splits of a `DemoConfig`; `scores_report`
builds what the two reports hold in common (the config, the split sizes,
the per-task accuracies and the disentanglement report), and
`write_report` writes a report as `report.json` and `report.html`.
"""

import dataclasses
import json
import os

from kfactor.lab.demo.config import REPORT_FILE
from kfactor.lab.demo.html import write_html

#: Model names in the accuracies (`evaluate_predictions`' keys).
TEACHER = "teacher"
FACTORS = "factor networks"
SINGLE_TASK = "single-task networks"
KD_STUDENT = "KD student"
#: Model name in the accuracies -> key of the report's per-task scores.
ACCURACY_KEYS = {
    TEACHER: "teacher_accuracy",
    FACTORS: "factor_accuracy",
    SINGLE_TASK: "single_task_accuracy",
    KD_STUDENT: "kd_student_accuracy",
}


def scores_report(config, tasks, accuracies, disentanglement):
    """The report's shared part: config, split sizes, per-task scores.

    Args:
        config: the `DemoConfig` whose splits were scored.
        tasks: the tasks of the `tasks` section, in order.
        accuracies: `{model name: {task: accuracy}}` of models named in
            `ACCURACY_KEYS` (others are left out).
        disentanglement: the disentanglement report of the codes.

    Returns:
        dict with `config`, `num_train_images`, `num_test_images`, `tasks`
        (per task `{ACCURACY_KEYS[model]: accuracy}`) and
        `disentanglement`.
    """
    return {
        "config": dataclasses.asdict(config),
        "num_train_images": config.num_train,
        "num_test_images": config.num_test,
        "tasks": {
            task: {
                key: accuracies[name][task]
                for name, key in ACCURACY_KEYS.items()
                if name in accuracies
            }
            for task in tasks
        },
        "disentanglement": disentanglement,
    }


#: A baseline this far below the teacher on a task is flagged: there,
#: "leaks less than the baseline" may only mean "knows less".
UNDERTRAINED_GAP = 0.05


def undertrained_baselines(accuracies, gap=UNDERTRAINED_GAP):
    """The baselines' tasks where they trail the teacher by more than `gap`.

    Returns:
        `{model name: {task: {"accuracy", "teacher_accuracy"}}}` for the
        single-task and KD baselines in `accuracies` (empty when none
        trails).
    """
    teacher = accuracies[TEACHER]
    flagged = {}
    for name in (SINGLE_TASK, KD_STUDENT):
        tasks = {
            task: {"accuracy": acc, "teacher_accuracy": teacher[task]}
            for task, acc in accuracies.get(name, {}).items()
            if acc < teacher[task] - gap
        }
        if tasks:
            flagged[name] = tasks
    return flagged


def write_report(report, output_dir):
    """Writes `report` as `output_dir/report.json` and `report.html` (the
    page a person opens, `kfactor.lab.demo.html`); returns the JSON's path."""
    path = os.path.join(output_dir, REPORT_FILE)
    with open(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    write_html(report, output_dir)
    return path


__all__ = [
    "ACCURACY_KEYS",
    "FACTORS",
    "KD_STUDENT",
    "SINGLE_TASK",
    "TEACHER",
    "UNDERTRAINED_GAP",
    "scores_report",
    "undertrained_baselines",
    "write_report",
]
