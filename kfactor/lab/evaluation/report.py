"""The disentanglement report: does each task code hold only its own task?

`disentanglement_report` scores the codes of a factorization against the
ground-truth factors with `lab.disentanglement`: MIG, SAP and modularity of the
concatenated task codes next to the teacher's latent, the leakage matrix of
task codes on factors, the block MI matrix, and linear transfer probes from
the common code. The result is plain JSON-able Python.
"""

from kfactor.lab import disentanglement as metrics
from kfactor.lab.evaluation.codes import COMMON
from kfactor.lab.evaluation.codes import TEACHER
from kfactor.lab.evaluation.codes import concatenate_blocks

import numpy as np

TASK_CODES = "task_codes"


def leakage_section(
    blocks_train,
    factors_train,
    blocks_test,
    factors_test,
    factor_names,
    probe="linear",
    intrinsic=None,
    random_state=0,
    result=None,
):
    """A probe's leakage matrix as report JSON, intrinsic cells named.

    Args:
        blocks_train, blocks_test: dict task -> codes `(N, dim)`.
        factors_train, factors_test: int `(N, K)`.
        factor_names: the `K` factor names.
        probe: `"linear"` or `"knn"` (see `lab.disentanglement.leakage_matrix`).
        intrinsic: dict `(task, factor) -> reason` of the cells the data
            forces (e.g. `lab.datasets.DSPRITES_INTRINSIC_LEAKAGE`); they
            are listed and left out of `max_nonintrinsic_above_chance`.
        random_state: seed of the probes.
        result: a `LeakageResult` of these codes already computed (e.g.
            `ProbeMutualInfo.leakage()`, the same linear probes), used
            instead of fitting the probes again.

    Returns:
        dict with `matrix`, `chance`, `block_names`, `factor_names`,
        `probe`, `max_offdiag_above_chance`, `mean_offdiag_above_chance`,
        `intrinsic_cells` and `max_nonintrinsic_above_chance`.
    """
    intrinsic = intrinsic or {}
    leakage = result or metrics.leakage_matrix(
        blocks_train,
        factors_train,
        blocks_test,
        factors_test,
        factor_names,
        random_state=random_state,
        probe=probe,
    )
    above = leakage.above_chance
    off = leakage.offdiag_mask
    nonintrinsic = off.copy()
    for b, block in enumerate(leakage.block_names):
        for j, factor in enumerate(leakage.factor_names):
            if (block, factor) in intrinsic:
                nonintrinsic[b, j] = False
    return {
        "probe": probe,
        "block_names": list(leakage.block_names),
        "factor_names": list(leakage.factor_names),
        "matrix": leakage.matrix.tolist(),
        "chance": leakage.chance.tolist(),
        "max_offdiag_above_chance": float(leakage.max_offdiag_above_chance),
        "mean_offdiag_above_chance": float(np.mean(above[off]))
        if off.any()
        else float("nan"),
        "intrinsic_cells": [
            {"task_code": b, "factor": f, "reason": reason}
            for (b, f), reason in intrinsic.items()
            if b in leakage.block_names and f in leakage.factor_names
        ],
        "max_nonintrinsic_above_chance": float(np.max(above[nonintrinsic]))
        if nonintrinsic.any()
        else float("nan"),
    }


def _nonintrinsic_mask(block_names, factor_names, intrinsic):
    """True where the block is not the factor's own and the cell is not
    one the data forces."""
    return np.array(
        [
            [b != f and (b, f) not in intrinsic for f in factor_names]
            for b in block_names
        ],
        dtype=bool,
    ).reshape(len(block_names), len(factor_names))


def excess_leakage(section, reference, intrinsic=None):
    """A leakage section minus a reference's, cell by cell.

    Args:
        section: a `leakage_section` (e.g. of the KF task codes).
        reference: a `leakage_section` of the same probe on the same images
            (e.g. of independently trained single-task networks); cells of
            blocks `section` lacks are ignored.
        intrinsic: the cells the data forces (left out of the maxima).

    Returns:
        dict with `block_names` (the blocks both have), `excess`,
        `max_nonintrinsic_excess` (negative: `section` holds less of every
        non-intrinsic factor than the reference),
        `nonintrinsic_cells_below_reference` and `nonintrinsic_cells`.
    """
    if list(section["factor_names"]) != list(reference["factor_names"]):
        raise ValueError(
            "Expected both leakage sections to probe the same factors. "
            f"Received: {section['factor_names']} and "
            f"{reference['factor_names']}."
        )
    blocks = [
        b for b in section["block_names"] if b in reference["block_names"]
    ]
    if not blocks:
        raise ValueError(
            "The leakage sections share no block. Received: "
            f"{section['block_names']} and {reference['block_names']}."
        )

    def rows(s):
        matrix = np.asarray(s["matrix"])
        return matrix[[list(s["block_names"]).index(b) for b in blocks]]

    excess = rows(section) - rows(reference)
    mask = _nonintrinsic_mask(blocks, section["factor_names"], intrinsic or {})
    return {
        "block_names": blocks,
        "excess": excess.tolist(),
        "max_nonintrinsic_excess": float(np.max(excess[mask]))
        if mask.any()
        else float("nan"),
        "nonintrinsic_cells_below_reference": int(np.sum(excess[mask] < 0)),
        "nonintrinsic_cells": int(np.sum(mask)),
    }


def probe_mi_section(probe_mi):
    """A `ProbeMutualInfo` as report JSON: the bound in nats, each factor's
    entropy, and the bound as a fraction of the entropy."""
    entropy = np.maximum(probe_mi.entropy, 1e-12)
    return {
        "block_names": list(probe_mi.block_names),
        "factor_names": list(probe_mi.factor_names),
        "matrix": probe_mi.matrix.tolist(),
        "entropy": probe_mi.entropy.tolist(),
        "normalized": (probe_mi.matrix / entropy).tolist(),
        "accuracy": probe_mi.accuracy.tolist(),
        "chance": probe_mi.chance.tolist(),
    }


def _representations(codes, task_names):
    return {
        TEACHER: codes[TEACHER],
        TASK_CODES: concatenate_blocks(codes, task_names),
    }


def _standard_metrics(train, factors_train, test, factors_test, dci, seed):
    scores = {
        "mig": metrics.mig(train, factors_train),
        "sap": metrics.sap(
            train, factors_train, test, factors_test, random_state=seed
        ),
        **metrics.modularity_explicitness(
            train, factors_train, test, factors_test, random_state=seed
        ),
    }
    if dci:
        scores.update(
            metrics.dci(
                train, factors_train, test, factors_test, random_state=seed
            )
        )
    return {k: float(v) for k, v in scores.items()}


def disentanglement_report(
    train_codes,
    train_factors,
    test_codes,
    test_factors,
    task_names,
    factor_names,
    dci=False,
    random_state=0,
    intrinsic=None,
):
    """Scores teacher, common and task codes against ground-truth factors.

    Args:
        train_codes, test_codes: dicts with `"teacher"`, `"common"` and one
            entry per task, each `(N, dim)` (see `lab.evaluation.codes`).
        train_factors, test_factors: int `(N, K)` factor labels.
        task_names: the factorized tasks (each a factor name).
        factor_names: the `K` factor names, in column order.
        dci: also compute DCI (about a minute on dSprites-sized factors).
        random_state: seed of every classifier.
        intrinsic: leakage cells the data forces (see `leakage_section`).

    Returns:
        A dict: `"metrics"` (per representation: mig, sap, modularity,
        explicitness[, dci]), `"probe_mi"` (the headline MI matrix: the
        probe lower bound, in nats, of the common code, every task code
        and the teacher latent on every factor; rotation invariant),
        `"leakage"` (the same linear probes' accuracies, task rows),
        `"leakage_knn"`, `"block_dci"` (with `dci`), `"block_mi"`
        (per-dimension maximum, secondary), `"transfer"` (common code ->
        each factor) and `"mi_per_dim"` (the matrices the heatmaps draw).
    """
    factor_names = list(factor_names)
    train_reps = _representations(train_codes, task_names)
    test_reps = _representations(test_codes, task_names)
    report = {"factor_names": factor_names, "task_names": list(task_names)}
    report["metrics"] = {
        name: _standard_metrics(
            train_reps[name],
            train_factors,
            test_reps[name],
            test_factors,
            dci,
            random_state,
        )
        for name in (TEACHER, TASK_CODES)
    }
    task_blocks = (
        {t: train_codes[t] for t in task_names},
        train_factors,
        {t: test_codes[t] for t in task_names},
        test_factors,
        factor_names,
    )
    # One set of whitened linear probes gives the MI bounds, the linear
    # leakage (task rows) and the common code's transfer probes.
    rows = [COMMON, *task_names, TEACHER]
    probe_mi = metrics.probe_mutual_info(
        {b: train_codes[b] for b in rows},
        train_factors,
        {b: test_codes[b] for b in rows},
        test_factors,
        factor_names,
        random_state=random_state,
    )
    report["probe_mi"] = probe_mi_section(probe_mi)
    report["leakage"] = leakage_section(
        *task_blocks,
        "linear",
        intrinsic,
        random_state,
        result=probe_mi.leakage(task_names),
    )
    report["leakage_knn"] = leakage_section(
        *task_blocks, "knn", intrinsic, random_state
    )
    if dci:
        report["block_dci"] = metrics.block_dci(
            *task_blocks, random_state=random_state
        )
    blocks = [COMMON, *task_names]
    block_mi = metrics.block_mutual_info(
        {b: train_codes[b] for b in blocks}, train_factors, factor_names
    )
    report["block_mi"] = {
        "block_names": list(block_mi.block_names),
        "factor_names": factor_names,
        "matrix": block_mi.matrix.tolist(),
    }
    common = probe_mi.block_names.index(COMMON)
    report["transfer"] = {
        factor: {
            "accuracy": float(probe_mi.accuracy[common, k]),
            "chance": float(probe_mi.chance[k]),
        }
        for k, factor in enumerate(factor_names)
    }
    report["mi_per_dim"] = {
        name: metrics.discrete_mutual_info(rep, train_factors).tolist()
        for name, rep in train_reps.items()
    }
    return report


def summary_rows(report):
    """`(name, value)` lines of the headline numbers of a report."""
    rows = []
    for metric in ("mig", "sap", "modularity"):
        for name in (TEACHER, TASK_CODES):
            rows.append((f"{metric} ({name})", report["metrics"][name][metric]))
    for key, probe in (("leakage", "linear"), ("leakage_knn", "kNN")):
        if key not in report:
            continue
        leakage = report[key]
        rows.append(
            (
                f"leakage ({probe} probe): max off-diagonal above chance",
                leakage["max_offdiag_above_chance"],
            )
        )
        if "max_nonintrinsic_above_chance" in leakage:
            rows.append(
                (
                    f"leakage ({probe} probe): max non-intrinsic cell",
                    leakage["max_nonintrinsic_above_chance"],
                )
            )
    rows += _probe_mi_rows(report)
    single = report.get("single_task_leakage", {})
    for probe, section in single.items():
        rows.append(
            (
                f"leakage ({probe}): mean off-diagonal, single-task networks",
                section["mean_offdiag_above_chance"],
            )
        )
        kf = report["leakage" if probe == "linear" else "leakage_knn"]
        rows.append(
            (
                f"leakage ({probe}): mean off-diagonal, task codes",
                kf["mean_offdiag_above_chance"],
            )
        )
        rows.append(
            (
                f"excess leakage over single-task ({probe}): max "
                "non-intrinsic cell",
                section["max_nonintrinsic_excess"],
            )
        )
    return rows


def _probe_mi_rows(report):
    """Mean probe-MI bound over H(factor): task codes on their own factor
    and on the others."""
    if "probe_mi" not in report:
        return []
    section = report["probe_mi"]
    normalized = np.asarray(section["normalized"])
    blocks, factors = section["block_names"], section["factor_names"]
    own, other = [], []
    for b, block in enumerate(blocks):
        if block not in report["task_names"]:
            continue
        for k, factor in enumerate(factors):
            (own if block == factor else other).append(normalized[b, k])
    rows = []
    if own:
        rows.append(("probe MI / H: task codes, own factor", np.mean(own)))
    if other:
        rows.append(("probe MI / H: task codes, other factors", np.mean(other)))
    if TEACHER in blocks:
        teacher = normalized[blocks.index(TEACHER)]
        rows.append(
            ("probe MI / H: teacher latent, all factors", teacher.mean())
        )
    return [(name, float(value)) for name, value in rows]


def mig_ratio(report):
    """MIG of the concatenated task codes over the teacher latent's."""
    teacher = report["metrics"][TEACHER]["mig"]
    tasks = report["metrics"][TASK_CODES]["mig"]
    return float(tasks / teacher) if teacher > 0 else float(np.inf)


__all__ = [
    "TASK_CODES",
    "disentanglement_report",
    "excess_leakage",
    "leakage_section",
    "mig_ratio",
    "probe_mi_section",
    "summary_rows",
]
