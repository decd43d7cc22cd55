"""PNG figures of a factorization report (matplotlib, no display needed)."""

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ACCURACY_FIGURE = "accuracy.png"
MI_FIGURE = "mi_heatmaps.png"
LEAKAGE_FIGURE = "leakage.png"
LEAKAGE_KNN_FIGURE = "leakage_knn.png"
PROBE_MI_FIGURE = "probe_mi.png"
TRANSFER_FIGURE = "transfer.png"


def _grouped_bars(series, num_groups):
    """A figure with one labelled bar per series in each of `num_groups`
    groups; `series` is name -> one value per group."""
    width = 0.8 / len(series)
    fig, ax = plt.subplots(
        figsize=(1.6 * num_groups + 2, 3.6), layout="constrained"
    )
    for i, (name, values) in enumerate(series.items()):
        x = np.arange(num_groups) + (i - (len(series) - 1) / 2) * width
        bars = ax.bar(x, values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    return fig, ax


def accuracy_bars(accuracies, path):
    """Grouped bars: per task, one bar per model (teacher, KD, factors).

    Args:
        accuracies: dict model name -> dict task -> accuracy.
        path: PNG file to write.
    """
    models = list(accuracies)
    # Tasks every model predicts (a factorization with held-out factors
    # has fewer than its teacher), in the first model's order.
    tasks = [
        t
        for t in next(iter(accuracies.values()))
        if all(t in scores for scores in accuracies.values())
    ]
    fig, ax = _grouped_bars(
        {m: [accuracies[m][t] for t in tasks] for m in models}, len(tasks)
    )
    ax.set_xticks(np.arange(len(tasks)), tasks)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("test accuracy")
    ax.set_title("Per-task test accuracy")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _heatmap(ax, matrix, rows, cols, title, vmax=None):
    matrix = np.asarray(matrix, dtype=float)
    image = ax.imshow(matrix, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
    ax.set_xticks(np.arange(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(
        np.arange(len(rows)), rows, fontsize=6 if len(rows) > 20 else 8
    )
    ax.set_title(title, fontsize=10)
    return image


def mi_heatmaps(mi_per_dim, factor_names, task_names, code_dims, path):
    """Per-dimension MI (nats) with each factor: teacher vs task codes.

    Args:
        mi_per_dim: dict with `"teacher"` `(D_t, K)` and `"task_codes"`
            `(sum D, K)` matrices.
        factor_names: column names.
        task_names: task blocks in the order of the concatenated codes.
        code_dims: dims per task block (an int, or a list: one per task).
        path: PNG file to write.
    """
    teacher = np.asarray(mi_per_dim["teacher"])
    tasks = np.asarray(mi_per_dim["task_codes"])
    vmax = max(teacher.max(), tasks.max(), 1e-6)
    fig, axes = plt.subplots(1, 2, figsize=(10, 6), layout="constrained")
    _heatmap(
        axes[0],
        teacher,
        [f"z{d}" for d in range(len(teacher))],
        factor_names,
        "teacher latent",
        vmax,
    )
    if isinstance(code_dims, int):
        code_dims = [code_dims] * len(task_names)
    rows = [f"{t}:{d}" for t, n in zip(task_names, code_dims) for d in range(n)]
    image = _heatmap(
        axes[1], tasks, rows, factor_names, "task codes (concatenated)", vmax
    )
    fig.colorbar(image, ax=axes, label="I(z_d; factor) [nats]", shrink=0.8)
    return _save(fig, path)


def _annotate(ax, values, shade):
    """Writes each cell's value on a heatmap, white on its dark cells
    (`shade < 0.5` on the 0-1 colour scale)."""
    for (r, c), value in np.ndenumerate(values):
        ax.text(
            c,
            r,
            f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if shade[r, c] < 0.5 else "black",
        )


def _annotated_leakage(ax, matrix, leakage, title):
    image = _heatmap(
        ax,
        np.clip(matrix, 0, None),
        leakage["block_names"],
        leakage["factor_names"],
        title,
        1.0,
    )
    _annotate(ax, matrix, shade=matrix)
    ax.set_ylabel("task code")
    ax.set_xlabel("factor")
    return image


def leakage_heatmap(leakage, path, single_task=None):
    """Probe accuracy above chance of each task code (rows) on each factor.

    With `single_task` (a section of the report's `single_task_leakage`),
    a second panel shows the same probe on independently trained
    single-task networks.
    """
    chance = np.asarray(leakage["chance"])
    panels = [(np.asarray(leakage["matrix"]) - chance, "factorization")]
    if single_task is not None:
        panels.append(
            (np.asarray(single_task["matrix"]) - chance, "single-task networks")
        )
    fig, axes = plt.subplots(
        1, len(panels), figsize=(6 * len(panels), 4.5), layout="constrained"
    )
    axes = np.atleast_1d(axes)
    probe = leakage.get("probe", "linear")
    for ax, (matrix, name) in zip(axes, panels):
        image = _annotated_leakage(
            ax, matrix, leakage, f"{name}: {probe} probe acc. above chance"
        )
    fig.colorbar(image, ax=list(axes))
    return _save(fig, path)


def probe_mi_heatmap(section, path):
    """The probe MI lower bound of each block (rows) on each factor, as a
    fraction of the factor's entropy, annotated in nats.

    Args:
        section: the report's `probe_mi`
        (`kfactor.lab.evaluation.report.probe_mi_section`).
        path: PNG file to write.
    """
    normalized = np.asarray(section["normalized"])
    nats = np.asarray(section["matrix"])
    fig, ax = plt.subplots(figsize=(6.5, 4.8), layout="constrained")
    image = _heatmap(
        ax,
        np.clip(normalized, 0, 1),
        section["block_names"],
        section["factor_names"],
        "Probe MI lower bound / H(factor) (cells: nats)",
        1.0,
    )
    _annotate(ax, nats, shade=normalized)
    ax.set_ylabel("code block")
    ax.set_xlabel("factor")
    fig.colorbar(image, ax=ax)
    return _save(fig, path)


def transfer_bars(transfer, path):
    """Linear-probe accuracy of each representation on each factor, the
    held-out factors marked, with each factor's chance rate.

    Args:
        transfer: the report's `transfer`
            (`kfactor.lab.evaluation.common_report.transfer_report`).
        path: PNG file to write.
    """
    factors = list(transfer["factors"])
    names = transfer["representations"]
    fig, ax = _grouped_bars(
        {n: [transfer["factors"][f][n] for f in factors] for n in names},
        len(factors),
    )
    for k, factor in enumerate(factors):
        chance = transfer["factors"][factor]["chance"]
        ax.hlines(chance, k - 0.4, k + 0.4, colors="k", linestyles=":")
    labels = [
        f"{f}\n(held out)" if transfer["factors"][f]["held_out"] else f
        for f in factors
    ]
    ax.set_xticks(np.arange(len(factors)), labels)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("linear probe test accuracy")
    ax.set_title("Transfer: frozen representations (dotted: chance)")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_figures(report, accuracies, output_dir, code_dims, transfer=None):
    """Writes the figures of a disentanglement report.

    Args:
        report: from `kfactor.lab.evaluation.report.disentanglement_report`.
        accuracies: dict model name -> dict task -> accuracy.
        output_dir: where the PNG files go.
        code_dims: dims of each task code (an int, or one per task).
        transfer: optional `lab.evaluation.common_report.transfer_report`
        result.

    Returns:
        dict figure name -> path.
    """
    single_task = report.get("single_task_leakage", {})
    figures = {}
    if "probe_mi" in report:
        figures["probe_mi"] = probe_mi_heatmap(
            report["probe_mi"], os.path.join(output_dir, PROBE_MI_FIGURE)
        )
    if "leakage_knn" in report:
        figures["leakage_knn"] = leakage_heatmap(
            report["leakage_knn"],
            os.path.join(output_dir, LEAKAGE_KNN_FIGURE),
            single_task=single_task.get("knn"),
        )
    if transfer is not None:
        figures["transfer"] = transfer_bars(
            transfer, os.path.join(output_dir, TRANSFER_FIGURE)
        )
    return figures | {
        "accuracy": accuracy_bars(
            accuracies, os.path.join(output_dir, ACCURACY_FIGURE)
        ),
        "mi_heatmaps": mi_heatmaps(
            report["mi_per_dim"],
            report["factor_names"],
            report["task_names"],
            code_dims,
            os.path.join(output_dir, MI_FIGURE),
        ),
        "leakage": leakage_heatmap(
            report["leakage"],
            os.path.join(output_dir, LEAKAGE_FIGURE),
            single_task=single_task.get("linear"),
        ),
    }


__all__ = [
    "ACCURACY_FIGURE",
    "LEAKAGE_FIGURE",
    "MI_FIGURE",
    "accuracy_bars",
    "leakage_heatmap",
    "mi_heatmaps",
    "report_figures",
]
