"""Does the common factor carry the teacher's knowledge, and is it used?

`common_factor_report` answers with four numbers, the ones a dead common
factor cannot fake:

- `mean_pairwise_cosine` of `z_common` over held-out images (near 1 when
  every image gets the same code);
- its `participation_ratio` (effective dimensions);
- a linear probe from `z_common` to every factor, next to the teacher's own
  accuracy on that task (`probe_gap_to_teacher`);
- the **mean-replacement drop**: the factor networks' accuracy with their
  own `z_common` minus their accuracy when `z_common` is replaced by its
  mean over the train codes. A factor network that ignores the common code
  loses nothing.

`transfer_report` asks whether the frozen common code serves factors held
out of the factorization, against the teacher's latent and a randomly
initialized encoder of the same architecture.
"""

from kfactor.lab import disentanglement as metrics
from kfactor.lab.evaluation.codes import COMMON
from kfactor.lab.evaluation.codes import TEACHER
from kfactor.objective import health

import numpy as np

#: The number of held-out codes the collapse measures read.
COLLAPSE_SAMPLE = 1000


def _accuracy(logits, labels):
    return float(np.mean(np.argmax(np.asarray(logits), -1) == labels))


def mean_replacement_accuracies(heads, common, task_codes, labels, mean):
    """Each head's accuracy on `common + z_task` and on `mean + z_task`.

    Args:
        heads: dict task -> callable `h -> logits` (a factor's `head`).
        common: `(N, dim)` common codes.
        task_codes: dict task -> `(N, dim)` task codes (means).
        labels: dict task -> `(N,)` int labels.
        mean: `(dim,)` the common code that replaces each image's own.

    Returns:
        dict task -> `{"accuracy", "mean_common_accuracy", "drop"}`.
    """
    results = {}
    for task, head in heads.items():
        own = _accuracy(head(common + task_codes[task]), labels[task])
        replaced = _accuracy(
            head(np.broadcast_to(mean, common.shape) + task_codes[task]),
            labels[task],
        )
        results[task] = {
            "accuracy": own,
            "mean_common_accuracy": replaced,
            "drop": own - replaced,
        }
    return results


def common_factor_report(
    train_codes,
    train_factors,
    test_codes,
    test_factors,
    factor_names,
    heads,
    teacher_accuracy=None,
    random_state=0,
    probes=None,
):
    """The `common_factor` section of a report (plain JSON-able Python).

    Args:
        train_codes, test_codes: dicts with `"common"` and one entry per task
            of `heads` (see `kfactor.lab.evaluation.codes`), `(N, dim)` each.
        train_factors, test_factors: int `(N, K)` factor labels.
        factor_names: the `K` factor names, in column order.
        heads: dict task -> callable `h -> logits`, the factor networks'
            heads on `z_common + z_task`.
        teacher_accuracy: optional dict task -> the teacher's accuracy, for
            `probe_gap_to_teacher`.
        random_state: seed of the probes.
        probes: optional dict factor -> `{accuracy, chance}` of linear probes
            on `z_common` already fitted on these codes (the disentanglement
            report's `transfer`), reused instead of fitted again.

    Returns:
        A dict with `mean_pairwise_cosine`, `participation_ratio`, `probes`
        (factor -> `{accuracy, chance[, teacher_accuracy,
        probe_gap_to_teacher]}`), `mean_replacement` (task -> accuracies and
        drop) and `mean_replacement_drop` (the average drop over tasks).
    """
    factor_names = list(factor_names)
    common_test = np.asarray(test_codes[COMMON], dtype="float32")
    sample = common_test[:COLLAPSE_SAMPLE]
    report = {
        "num_codes": int(sample.shape[0]),
        "mean_pairwise_cosine": float(health.mean_pairwise_cosine(sample)),
        "participation_ratio": float(health.participation_ratio(sample)),
    }
    fitted = probes or {}
    probes = {}
    for k, factor in enumerate(factor_names):
        if factor in fitted:
            probe = dict(fitted[factor])
        else:
            probe = metrics.linear_probe(
                train_codes[COMMON],
                train_factors[:, k],
                common_test,
                test_factors[:, k],
                random_state=random_state,
            )._asdict()
        if teacher_accuracy and factor in teacher_accuracy:
            probe["teacher_accuracy"] = float(teacher_accuracy[factor])
            probe["probe_gap_to_teacher"] = float(
                teacher_accuracy[factor] - probe["accuracy"]
            )
        probes[factor] = probe
    report["probes"] = probes
    labels = {f: test_factors[:, k] for k, f in enumerate(factor_names)}
    replacement = mean_replacement_accuracies(
        heads,
        common_test,
        {t: np.asarray(test_codes[t], "float32") for t in heads},
        {t: labels[t] for t in heads},
        np.mean(np.asarray(train_codes[COMMON], "float32"), axis=0),
    )
    report["mean_replacement"] = replacement
    report["mean_replacement_drop"] = float(
        np.mean([v["drop"] for v in replacement.values()])
    )
    return report


#: The representation that gives the transfer table its floor: a randomly
#: initialized encoder of the common encoder's architecture.
RANDOM_ENCODER = "random_encoder"
TRANSFER_REPRESENTATIONS = (COMMON, TEACHER, RANDOM_ENCODER)


def _fit_missing_probes(
    train_codes,
    train_factors,
    test_codes,
    test_factors,
    factor_names,
    random_state,
    fitted,
):
    """`fitted` (representation -> factor -> `{accuracy, chance}`) with the
    linear probes it lacks for `train_codes`' representations fitted, side
    by side (`lab.disentanglement.leakage_matrix`)."""
    missing = [
        name
        for name in train_codes
        if any(f not in fitted.get(name, {}) for f in factor_names)
    ]
    if not missing:
        return fitted
    probed = metrics.leakage_matrix(
        {name: train_codes[name] for name in missing},
        train_factors,
        {name: test_codes[name] for name in missing},
        test_factors,
        factor_names,
        random_state=random_state,
    )
    completed = dict(fitted)
    for row, name in enumerate(missing):
        completed[name] = {
            factor: {
                "accuracy": float(probed.matrix[row, k]),
                "chance": float(probed.chance[k]),
            }
            for k, factor in enumerate(factor_names)
        }
        completed[name].update(fitted.get(name, {}))
    return completed


def transfer_report(
    train_codes,
    train_factors,
    test_codes,
    test_factors,
    factor_names,
    task_names,
    random_state=0,
    fitted=None,
):
    """Linear probes of frozen representations on every factor.

    The transfer claim: the frozen common code `z_common` serves factors
    it was never trained on. Each factor is read by a linear probe (see
    `lab.disentanglement.linear_probe`) from `z_common`, from the teacher's
    latent (which was trained on every task it has: the ceiling) and from
    a randomly initialized encoder of the common encoder's architecture
    (the floor: what the architecture gives without learning). A factor
    is *held out* when it is not one of `task_names`, so no factor
    network, loss or label of the factorization ever touched it.

    Args:
        train_codes, test_codes: dicts with any of `"common"`,
            `"teacher"` and `"random_encoder"`, each `(N, dim)`.
        train_factors, test_factors: int `(N, K)` factor labels.
        factor_names: the `K` factor names.
        task_names: the factorized tasks.
        random_state: seed of the probes.
        fitted: optional dict representation -> factor -> `{accuracy,
            chance}` already fitted on these codes (reused).

    Returns:
        dict with `representations` (those found in the codes),
        `held_out` (factor names) and `factors`: factor -> `{held_out,
        chance, <representation>: accuracy, common_minus_random}`.
    """
    representations = [r for r in TRANSFER_REPRESENTATIONS if r in train_codes]
    fitted = _fit_missing_probes(
        {r: train_codes[r] for r in representations},
        train_factors,
        {r: test_codes[r] for r in representations},
        test_factors,
        list(factor_names),
        random_state,
        fitted or {},
    )
    factors = {}
    for factor in factor_names:
        row = {"held_out": factor not in task_names}
        for name in representations:
            probe = fitted[name][factor]
            row[name] = float(probe["accuracy"])
            row["chance"] = float(probe["chance"])
        if COMMON in row and RANDOM_ENCODER in row:
            row["common_minus_random"] = row[COMMON] - row[RANDOM_ENCODER]
        factors[factor] = row
    return {
        "representations": representations,
        "held_out": [f for f in factor_names if factors[f]["held_out"]],
        "factors": factors,
    }


__all__ = [
    "COLLAPSE_SAMPLE",
    "RANDOM_ENCODER",
    "TRANSFER_REPRESENTATIONS",
    "common_factor_report",
    "mean_replacement_accuracies",
    "transfer_report",
]
