"""The disentanglement report: does each task code hold only its own task?

`disentanglement_report` scores the codes of a factorization against the
ground-truth factors with `kfactor.metrics`: MIG, SAP and modularity of the
concatenated task codes next to the teacher's latent, the leakage matrix of
task codes on factors, the block MI matrix, and linear transfer probes from
the common code. The result is plain JSON-able Python.
"""

from kfactor import metrics
from kfactor.codes import COMMON
from kfactor.codes import TEACHER
from kfactor.codes import concatenate_blocks

import numpy as np

TASK_CODES = "task_codes"


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
):
    """Scores teacher, common and task codes against ground-truth factors.

    Args:
        train_codes, test_codes: dicts with `"teacher"`, `"common"` and one
            entry per task, each `(N, dim)` (see `kfactor.codes`).
        train_factors, test_factors: int `(N, K)` factor labels.
        task_names: the factorized tasks (each a factor name).
        factor_names: the `K` factor names, in column order.
        dci: also compute DCI (about a minute on dSprites-sized factors).
        random_state: seed of every classifier.

    Returns:
        A dict: `"metrics"` (per representation: mig, sap, modularity,
        explicitness[, dci]), `"leakage"`, `"block_mi"`, `"transfer"`
        (common code -> each factor) and `"mi_per_dim"` (the matrices the
        heatmaps draw).
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
    leakage = metrics.leakage_matrix(
        {t: train_codes[t] for t in task_names},
        train_factors,
        {t: test_codes[t] for t in task_names},
        test_factors,
        factor_names,
        random_state=random_state,
    )
    report["leakage"] = {
        "block_names": list(leakage.block_names),
        "factor_names": list(leakage.factor_names),
        "matrix": leakage.matrix.tolist(),
        "chance": leakage.chance.tolist(),
        "max_offdiag_above_chance": float(leakage.max_offdiag_above_chance),
    }
    blocks = [COMMON, *task_names]
    block_mi = metrics.block_mutual_info(
        {b: train_codes[b] for b in blocks}, train_factors, factor_names
    )
    report["block_mi"] = {
        "block_names": list(block_mi.block_names),
        "factor_names": factor_names,
        "matrix": block_mi.matrix.tolist(),
    }
    report["transfer"] = {
        factor: metrics.linear_probe(
            train_codes[COMMON],
            train_factors[:, k],
            test_codes[COMMON],
            test_factors[:, k],
            random_state=random_state,
        )._asdict()
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
    leakage = report["leakage"]
    rows.append(
        (
            "leakage: max off-diagonal above chance",
            leakage["max_offdiag_above_chance"],
        )
    )
    return rows


def mig_ratio(report):
    """MIG of the concatenated task codes over the teacher latent's."""
    teacher = report["metrics"][TEACHER]["mig"]
    tasks = report["metrics"][TASK_CODES]["mig"]
    return float(tasks / teacher) if teacher > 0 else float(np.inf)
