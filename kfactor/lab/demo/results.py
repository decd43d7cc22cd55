"""docs/RESULTS.md, generated from demo reports and the objective comparison.

`render_results(seed_reports, comparison)` turns the reports of demo runs
that differ only in their training seed (`examples/three_seeds.py`) and the
runs of `examples/objective_comparison.py` into Markdown: every cell is the
mean ± std over seeds. The same function regenerates the file and checks
that it is current (tests/lab/demo/test_results_doc.py).
"""

import os
import platform
import subprocess

import numpy as np

#: Report accuracy key -> row name of the headline table.
MODEL_ROWS = {
    "teacher_accuracy": "Teacher",
    "kd_student_accuracy": "KD student (total factor size)",
    "single_task_accuracy": "Single-task networks",
    "factor_accuracy": "Factor networks (KF)",
}
#: Leakage sections (report key) -> column name.
LEAKAGE_COLUMNS = {
    "leakage": "linear, mean",
    "leakage_knn": "kNN, mean",
    "leakage_sampled": "linear, sampled",
    "leakage_knn_sampled": "kNN, sampled",
}


def cell(values, digits=3):
    """`mean ± std` of the finite `values`, or `-` when there are none."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "-"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def _table(header, rows):
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def accuracy_table(reports):
    tasks = list(reports[0]["tasks"])
    rows = []
    for key, name in MODEL_ROWS.items():
        if key not in reports[0]["tasks"][tasks[0]]:
            continue
        rows.append(
            [name]
            + [cell([r["tasks"][t][key] for r in reports]) for t in tasks]
        )
    rows.append(
        ["Factor networks - teacher (pts)"]
        + [
            cell(
                [
                    100
                    * (
                        r["tasks"][t]["factor_accuracy"]
                        - r["tasks"][t]["teacher_accuracy"]
                    )
                    for r in reports
                ],
                2,
            )
            for t in tasks
        ]
    )
    return _table(["model", *tasks], rows)


def common_table(reports):
    factors = reports[0]["transfer"]["factors"]
    rows = []
    for name, key in (
        ("z_common", "common"),
        ("teacher latent", "teacher"),
        ("random encoder", "random_encoder"),
        ("chance", "chance"),
    ):
        rows.append(
            [name]
            + [
                cell([r["transfer"]["factors"][f].get(key) for r in reports])
                for f in factors
            ]
        )
    return _table(["linear probe", *factors], rows)


def health_table(reports):
    common = [r["common_factor"] for r in reports]
    rows = [
        [
            "mean pairwise cosine",
            cell([c["mean_pairwise_cosine"] for c in common]),
        ],
        [
            "participation ratio",
            cell([c["participation_ratio"] for c in common], 2),
        ],
        [
            "mean-replacement drop (pts)",
            cell([100 * c["mean_replacement_drop"] for c in common], 1),
        ],
    ]
    return _table(["common code", "value"], rows)


def leakage_table(reports):
    rows = []
    for key, name in LEAKAGE_COLUMNS.items():
        sections = [r["disentanglement"].get(key) for r in reports]
        if not all(sections):
            continue
        single = [
            r["disentanglement"]
            .get("single_task_leakage", {})
            .get("linear" if "knn" not in key else "knn")
            for r in reports
        ]
        worse = "-"
        if "sampled" not in key and all(single):
            worse = cell(
                [
                    s["nonintrinsic_cells"]
                    - s["nonintrinsic_cells_kf_below_single_task"]
                    for s in single
                ],
                1,
            )
            single_max = cell(
                [s["max_nonintrinsic_above_chance"] for s in single]
            )
        else:
            single_max = "-"
        rows.append(
            [
                name,
                cell([s["max_nonintrinsic_above_chance"] for s in sections]),
                single_max,
                worse,
            ]
        )
    return _table(
        [
            "task codes, probe",
            "worst non-intrinsic cell above chance",
            "single-task networks, same",
            "cells not below single-task",
        ],
        rows,
    )


def comparison_table(runs):
    """The objective comparison: one row a variant (mean ± std over its
    seeds), held-out transfer, probes, accuracy and leakage."""
    variants = list(dict.fromkeys(run["variant"] for run in runs))
    held_out = [f for f, row in runs[0]["transfer"].items() if row["held_out"]]
    tasks = list(runs[0]["factor_accuracy"])
    header = [
        "variant",
        "seeds",
        *[f"held-out {f}: z_common (random)" for f in held_out],
        *[f"{t}: factor net" for t in tasks],
        "z_common orientation",
        "leakage linear / kNN (mean)",
        "leakage linear / kNN (sampled)",
    ]
    rows = []
    for variant in variants:
        group = [r for r in runs if r["variant"] == variant]
        leak = [r["max_leakage_above_chance"] for r in group]
        rows.append(
            [
                f"`{variant}`",
                str(len(group)),
                *[
                    cell([r["transfer"][f]["common"] for r in group])
                    + " ("
                    + cell([r["transfer"][f]["random_encoder"] for r in group])
                    + ")"
                    for f in held_out
                ],
                *[
                    cell([r["factor_accuracy"][t] for r in group])
                    for t in tasks
                ],
                cell([r["transfer"]["orientation"]["common"] for r in group]),
                cell([x.get("leakage") for x in leak])
                + " / "
                + cell([x.get("leakage_knn") for x in leak]),
                cell([x.get("leakage_sampled") for x in leak])
                + " / "
                + cell([x.get("leakage_knn_sampled") for x in leak]),
            ]
        )
    return _table(header, rows)


def cpu_name():
    """The CPU's model name, family and model numbers (a virtual machine's
    model name may be only "AMD EPYC"), core count and vector extensions
    (`lscpu`)."""
    try:
        text = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor() or "unknown CPU"
        return f"{model}, {os.cpu_count()} cores"
    fields = dict(
        line.split(":", 1) for line in text.splitlines() if ":" in line
    )
    flags_ = fields.get("Flags", "").split()
    isa = [f for f in ("avx2", "avx512f", "amx_tile") if f in flags_]
    model = fields.get("Model name", "?").strip()
    family, number = fields.get("CPU family"), fields.get("Model")
    if family and number:
        model += f" (family {family.strip()} model {number.strip()})"
    cores = fields.get("CPU(s)", "?").strip()
    return f"{model}, {cores} cores, {' '.join(isa)}"


def render_results(seed_reports, comparison, meta):
    """docs/RESULTS.md as a string.

    Args:
        seed_reports: demo reports that differ only in `training_seed`.
        comparison: the `runs` of `examples/objective_comparison.py`.
        meta: dict with `command`, `comparison_command`, `machine` and
            `minutes` (texts quoted as they are).
    """
    seeds = [r["config"]["training_seed"] for r in seed_reports]
    parts = [
        "# Results: knowledge factorization from scratch on procedural "
        "dSprites",
        "",
        "Generated by `" + meta["command"] + "` from "
        "`docs/results_seeds.json` and `docs/objective_comparison.json` "
        f"({meta['machine']}; {meta['minutes']}). Do not edit by hand: "
        "tests/lab/demo/test_results_doc.py checks that this file is current.",
        "",
        f"Every factor encoder (common and task) and every baseline starts "
        f"at random (training seeds {seeds}; the splits and the shipped "
        "teacher are the demo's). Cells are mean ± std over the seeds; "
        f"{seed_reports[0]['num_test_images']:,} held-out test images.",
        "",
        "## Accuracy",
        "",
        accuracy_table(seed_reports),
        "",
        "## What the common code holds (frozen, linear probes)",
        "",
        common_table(seed_reports),
        "",
        health_table(seed_reports),
        "",
        "## What the task codes leak",
        "",
        "Probe accuracy above chance of each task code on the *other* "
        "factors, the worst cell that dSprites does not force (see "
        "`kfactor.lab.datasets.DSPRITES_INTRINSIC_LEAKAGE`), read on the "
        "code mean "
        "(what assembled networks read) and on sampled codes.",
        "",
        leakage_table(seed_reports),
        "",
        "## Choosing the objective's default",
        "",
        "`" + meta["comparison_command"] + "`: factorizations from scratch "
        "with the factors named held-out left out (no label, head or loss "
        "touches them); the held-out columns are the transfer claim. The "
        "`Factorizer`'s default objective is the `hint10_confusion` row "
        "(hint weight 10, confusion adversary weight 3, in-batch InfoNCE "
        "weight 1); `hint10_class_means` replaces the adversary with the "
        "closed-form between-class penalty (`CrossTaskAdversary(mode="
        '"class_means")`, weight 10); `dv`, `jsd` and `nwj` swap InfoNCE '
        "for another in-batch bound, without hint or adversary. Each run's "
        "CPU is in "
        "`docs/objective_comparison.json` (`cpu`; runs without it predate "
        "the field).",
        "",
        comparison_table(comparison),
        "",
    ]
    return "\n".join(parts)


__all__ = [
    "LEAKAGE_COLUMNS",
    "MODEL_ROWS",
    "accuracy_table",
    "cell",
    "common_table",
    "comparison_table",
    "cpu_name",
    "health_table",
    "leakage_table",
    "render_results",
]
