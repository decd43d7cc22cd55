"""Figures and tables of the `realistic` and `inference` parts.

`realistic`: the items `realistic/{size}/function` (kfactor) and
`realistic/{size}/torch_{variant}` (`torch_realistic.STEP_VARIANTS`):
images/s, kfactor / each PyTorch variant round by round, and kfactor / the
fastest PyTorch variant of each round (the anchor), with the step's
GFLOP/s as a share of the same run's matmul.

`inference`: the items `infer/{workload}/{arrangement}/{batch}`: per
workload and batch, images/s and p50/p99 call latency of kfactor's
assembled model, its N standalone factor networks, its exported
SavedModel, and PyTorch's assembled computation (eager, channels_last,
inductor) and standalone networks (eager); the ratios assembled /
standalone against the FLOP ideal, kfactor / best PyTorch, and in-process
/ SavedModel. Standard library only, like `report.py`.
"""

import statistics

from benchmarks import stats

TORCH_PREFIX = "torch_"
#: PyTorch variants of the realistic step, in table order.
STEP_VARIANTS = (
    "eager",
    "channels_last",
    "compile",
    "compile_channels_last",
    "eager_foreach",
    "channels_last_foreach",
)
INFERENCE_VARIANTS = ("eager", "channels_last", "inductor")
ARRANGEMENTS = ("assembled", "standalone", "savedmodel")
ARRANGEMENTS += tuple(TORCH_PREFIX + v for v in INFERENCE_VARIANTS)
ARRANGEMENTS += (TORCH_PREFIX + "standalone",)
#: The goals of issue 26.
STEP_GOAL = 1.3
TORCH_INFERENCE_GOAL = 1.3
EXPORT_GOAL = 1.1


def _windows(entries, key):
    entry = entries.get(key)
    return entry["windows"] if entry else None


def best_rounds(entries, keys):
    """Per round, the fastest of `keys`' windows (rounds all measured)."""
    by_round = [stats.rates_by_round(entries[k]["windows"]) for k in keys]
    if not by_round:
        return []
    rounds = sorted(set.intersection(*(set(r) for r in by_round)))
    best = []
    for r in rounds:
        rate, key = max((rates[r], k) for rates, k in zip(by_round, keys))
        best.append({"round": r, "rate": rate, "key": key})
    return best


def paired(numerator, denominator):
    """Summary of per-round ratios of two window lists (None if missing)."""
    if not numerator or not denominator:
        return None
    return stats.summary(stats.paired_ratios(numerator, denominator))


def _rates(windows):
    return stats.summary([w["rate"] for w in windows]) if windows else None


def _entry_keys(entries, prefix):
    return {
        key.removeprefix(prefix): key
        for key in entries
        if key.startswith(prefix)
    }


# === realistic ===


def derive_realistic(entries, matmul_gflops):
    """`{size: {...}}` of the realistic step, per size measured."""
    derived = {}
    sizes = sorted(
        {
            e["item"].split("/")[1]
            for e in entries.values()
            if e["item"].startswith("realistic/")
        }
    )
    for size in sizes:
        ours = f"kfactor/default/realistic/{size}/function"
        torch_keys = _entry_keys(
            entries, f"pytorch/default/realistic/{size}/{TORCH_PREFIX}"
        )
        variants = [v for v in STEP_VARIANTS if v in torch_keys]
        ours_windows = _windows(entries, ours)
        row = {
            "kfactor": _rates(ours_windows),
            "pytorch": {
                v: _rates(_windows(entries, torch_keys[v])) for v in variants
            },
            "kfactor_over": {
                v: paired(ours_windows, _windows(entries, torch_keys[v]))
                for v in variants
            },
        }
        best = best_rounds(entries, [torch_keys[v] for v in variants])
        row["best_variant"] = [
            b["key"].rsplit("/", 1)[1].removeprefix(TORCH_PREFIX) for b in best
        ]
        row["kfactor_over_best"] = paired(ours_windows, best)
        flops = (
            entries[ours]["meta"].get("flops_per_image")
            if (ours in entries)
            else None
        )
        row["flops_per_image"] = flops
        share = None
        if flops and matmul_gflops and row["kfactor"]:
            share = row["kfactor"]["median"] * flops / 1e9 / matmul_gflops
        row["kfactor_share_of_matmul"] = share
        derived[size] = row
    return derived


# === inference ===


def percentiles(windows):
    """`{p50, p99}` in ms of every call of the windows (or None)."""
    calls = [s for w in windows or [] for s in w.get("call_seconds", [])]
    if not calls:
        return None
    if len(calls) == 1:
        return {"p50": calls[0] * 1e3, "p99": calls[0] * 1e3, "calls": 1}
    cuts = statistics.quantiles(calls, n=100, method="inclusive")
    return {"p50": cuts[49] * 1e3, "p99": cuts[98] * 1e3, "calls": len(calls)}


def derive_inference(entries):
    """`{workload/batch: {...}}` of the inference part."""
    groups = {}
    for key, entry in entries.items():
        parts = entry["item"].split("/")
        if parts[0] == "infer":
            groups.setdefault(f"{parts[1]}/{parts[3]}", {})[parts[2]] = key
    derived = {}
    for group, keys in sorted(groups.items()):
        windows = {a: _windows(entries, k) for a, k in keys.items()}
        ideal = None
        if "assembled" in keys:
            ideal = entries[keys["assembled"]]["meta"].get("flop_ideal_speedup")
        torch_keys = [
            keys[TORCH_PREFIX + v]
            for v in INFERENCE_VARIANTS
            if TORCH_PREFIX + v in keys
        ]
        best = best_rounds(entries, torch_keys)
        speedup = paired(windows.get("assembled"), windows.get("standalone"))
        row = {
            "rates": {a: _rates(w) for a, w in windows.items()},
            "latency_ms": {a: percentiles(w) for a, w in windows.items()},
            "flop_ideal_speedup": ideal,
            "assembled_over_standalone": speedup,
            "speedup_over_ideal": (
                speedup["median"] / ideal if speedup and ideal else None
            ),
            "pytorch_assembled_over_standalone": paired(
                windows.get(TORCH_PREFIX + "eager"),
                windows.get(TORCH_PREFIX + "standalone"),
            ),
            "kfactor_over_best_pytorch": paired(windows.get("assembled"), best),
            "best_pytorch": [
                b["key"].rsplit("/", 2)[1].removeprefix(TORCH_PREFIX)
                for b in best
            ],
            "in_process_over_savedmodel": paired(
                windows.get("assembled"), windows.get("savedmodel")
            ),
        }
        derived[group] = row
    return derived


# === Goals ===


def _median(summary):
    return summary["median"] if summary else None


def goals(derived):
    """`[(goal, value, target, met)]` of the two parts."""
    rows = []

    def add(name, value, target, at_least=True):
        if value is not None:
            met = value >= target if at_least else value <= target
            sign = ">=" if at_least else "<="
            rows.append(
                {
                    "goal": name,
                    "value": value,
                    "target": f"{sign} {target}",
                    "met": met,
                }
            )

    for size, row in derived.get("realistic", {}).items():
        add(
            f"realistic step ({size}), kfactor / best PyTorch variant",
            _median(row["kfactor_over_best"]),
            STEP_GOAL,
        )
    for group, row in derived.get("inference", {}).items():
        add(
            f"inference {group}: assembled speed-up / FLOP-ideal",
            row["speedup_over_ideal"],
            1.0,
        )
        add(
            f"inference {group}: kfactor assembled / best PyTorch",
            _median(row["kfactor_over_best_pytorch"]),
            TORCH_INFERENCE_GOAL,
        )
        ratio = _median(row["in_process_over_savedmodel"])
        add(
            f"inference {group}: SavedModel time / in-process time",
            ratio,
            EXPORT_GOAL,
            at_least=False,
        )
    return rows


# === Markdown ===


def _number(value, digits=None):
    if value is None:
        return "-"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def _spread(summary, digits=None):
    if not summary:
        return "-"
    median, low, high = (
        _number(summary[k], digits) for k in ("median", "min", "max")
    )
    return f"{median} [{low}, {high}]"


def realistic_rows(derived):
    rows = []
    for size, row in derived.get("realistic", {}).items():
        share = row["kfactor_share_of_matmul"]
        rows += [
            "",
            f"### Realistic step ({size}): WRN-28-2 teacher, ResNet-18 "
            "common, 3 MobileNetV2 x0.5 tasks, 32x32x3 (images/s)",
            "",
            "| framework | variant | images/s | kfactor / it |",
            "|---|---|---|---|",
            f"| kfactor | Factorizer + FusedAdam, train function | "
            f"{_spread(row['kfactor'])} | - |",
        ]
        for variant, rate in row["pytorch"].items():
            rows.append(
                f"| pytorch | {variant} | {_spread(rate)} | "
                f"{_spread(row['kfactor_over'][variant], 2)} |"
            )
        winners = ", ".join(row["best_variant"]) or "-"
        rows += [
            "",
            f"kfactor / best PyTorch variant of each round: "
            f"{_spread(row['kfactor_over_best'], 2)} (goal >= {STEP_GOAL}; "
            f"best each round: {winners}); kfactor's "
            f"{_number((row['flops_per_image'] or 0) / 1e9, 2)} GFLOP an "
            f"image reach {'-' if share is None else f'{share:.0%}'} of the "
            "same run's 2048^2 fp32 matmul.",
        ]
    return rows


def _latency(value):
    if not value:
        return "-"
    return f"{_number(value['p50'], 2)} / {_number(value['p99'], 2)}"


def inference_rows(derived):
    rows = []
    inference = derived.get("inference", {})
    if not inference:
        return rows
    rows += [
        "",
        "### Assembled inference (images/s; latency p50 / p99 ms a call)",
        "",
        "| workload/batch | arrangement | images/s | p50 / p99 ms |",
        "|---|---|---|---|",
    ]
    for group, row in inference.items():
        for arrangement in ARRANGEMENTS:
            if arrangement not in row["rates"]:
                continue
            rows.append(
                f"| {group} | {arrangement} | "
                f"{_spread(row['rates'][arrangement])} | "
                f"{_latency(row['latency_ms'][arrangement])} |"
            )
    rows += [
        "",
        "| workload/batch | assembled / standalone | FLOP ideal | "
        "of ideal | PyTorch's assembled / standalone | kfactor / best "
        "PyTorch | best PyTorch | in-process / SavedModel |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group, row in inference.items():
        ideal = row["flop_ideal_speedup"]
        over = row["speedup_over_ideal"]
        rows.append(
            f"| {group} | {_spread(row['assembled_over_standalone'], 2)} | "
            f"{_number(ideal, 2)} | {_number(over, 2)} | "
            f"{_spread(row['pytorch_assembled_over_standalone'], 2)} | "
            f"{_spread(row['kfactor_over_best_pytorch'], 2)} | "
            f"{', '.join(row['best_pytorch']) or '-'} | "
            f"{_spread(row['in_process_over_savedmodel'], 2)} |"
        )
    rows += [
        "",
        "Ratios are per round (images/s over images/s); in-process / "
        "SavedModel (= SavedModel time / in-process time) at most 1.1 meets "
        "the export goal.",
    ]
    return rows


def markdown_rows(derived):
    return realistic_rows(derived) + inference_rows(derived)
