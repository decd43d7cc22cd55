"""The demo's report as Markdown tables: accuracies, factors, scores.

`format_table` prints a `kfactor demo` report and a `kfactor evaluate`
report alike; it shows the sections a report holds and skips the others.
"""

from kfactor.lab.evaluation.report import summary_rows

#: Optional baseline columns of the accuracy table: report key -> header.
BASELINE_COLUMNS = {
    "single_task_accuracy": "single-task",
    "kd_student_accuracy": "KD student",
}


def format_table(report):
    """The per-task accuracy table and headline scores, as Markdown."""
    baselines = [
        key
        for key in BASELINE_COLUMNS
        if all(key in v for v in report["tasks"].values())
    ]
    header = "".join(f" {BASELINE_COLUMNS[k]} |" for k in baselines)
    lines = [
        f"| task | teacher |{header} factor network | factor - teacher |",
        "|---|---|" + "---|" * len(baselines) + "---|---|",
    ]
    for task, scores in report["tasks"].items():
        teacher, factor = scores["teacher_accuracy"], scores["factor_accuracy"]
        cells = "".join(f" {scores[k]:.4f} |" for k in baselines)
        lines.append(
            f"| {task} | {teacher:.4f} |{cells} {factor:.4f} | "
            f"{100 * (factor - teacher):+.2f} pts |"
        )
    if "orientation_accuracy" in report:
        lines += ["", "| orientation | raw | up to symmetry |", "|---|---|---|"]
        lines += [
            f"| {name} | {v['raw']:.4f} | {v['symmetry_aware']:.4f} |"
            for name, v in report["orientation_accuracy"].items()
        ]
    if "common_factor" in report:
        lines += ["", common_factor_table(report["common_factor"])]
    if "transfer" in report:
        lines += ["", transfer_table(report["transfer"])]
    if "probe_mi" in report.get("disentanglement", {}):
        lines += ["", probe_mi_table(report["disentanglement"]["probe_mi"])]
    if "disentanglement" in report:
        lines += ["", "| score | value |", "|---|---|"]
        lines += [
            f"| {name} | {value:.4f} |"
            for name, value in summary_rows(report["disentanglement"])
        ]
    return "\n".join(lines)


def transfer_table(transfer):
    """The transfer report as Markdown: frozen representations probed on
    every factor, held-out factors marked."""
    names = transfer["representations"]
    lines = [
        "| factor | " + " | ".join(names) + " | chance |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for factor, row in transfer["factors"].items():
        label = f"{factor} (held out)" if row["held_out"] else factor
        cells = " | ".join(f"{row[n]:.4f}" for n in names)
        lines.append(f"| {label} | {cells} | {row['chance']:.4f} |")
    return "\n".join(lines)


def probe_mi_table(section):
    """The probe MI lower bound (nats) of every block on every factor."""
    factors = section["factor_names"]
    lines = [
        "| MI lower bound [nats] | " + " | ".join(factors) + " |",
        "|---|" + "---|" * len(factors),
        "| H(factor) | "
        + " | ".join(f"{h:.2f}" for h in section["entropy"])
        + " |",
    ]
    for block, row in zip(section["block_names"], section["matrix"]):
        lines.append(
            f"| {block} | " + " | ".join(f"{v:.2f}" for v in row) + " |"
        )
    return "\n".join(lines)


def common_factor_table(common):
    """The `common_factor` section as Markdown: alive, informative, used."""
    lines = [
        "| common factor | value |",
        "|---|---|",
        f"| mean pairwise cosine | {common['mean_pairwise_cosine']:.3f} |",
        f"| participation ratio | {common['participation_ratio']:.2f} |",
        "| accuracy drop, z_common -> its mean (avg over tasks) | "
        f"{100 * common['mean_replacement_drop']:.1f} pts |",
    ]
    for factor, probe in common["probes"].items():
        teacher = probe.get("teacher_accuracy")
        versus = f" (teacher {teacher:.4f})" if teacher is not None else ""
        lines.append(
            f"| linear probe z_common -> {factor} | "
            f"{probe['accuracy']:.4f}{versus} |"
        )
    return "\n".join(lines)


def baselines_note(report):
    """One sentence on where a run's baselines come from ("" if none)."""
    source = report.get("baselines") or {}
    if source.get("source") == "pretrained":
        return (
            "Baselines: the shipped pretrained ones (kfactor/lab/pretrained/, "
            "trained with this run's data, architecture, steps and seed by "
            "examples/make_pretrained_baselines.py); --train_baselines trains "
            "them in the run."
        )
    if source.get("source") == "trained":
        return "Baselines: trained in this run, from scratch."
    return ""


__all__ = [
    "BASELINE_COLUMNS",
    "baselines_note",
    "common_factor_table",
    "format_table",
    "probe_mi_table",
    "transfer_table",
]
