"""Derived figures (ratios, GFLOP/s, latencies) and the markdown table.

Works on the results dict of `run.py` only (standard library): a saved JSON
can be re-tabled with `python -m benchmarks.report RESULTS.json`.
"""

import json
import sys

from benchmarks import phase_report
from benchmarks import realistic_report
from benchmarks import stats

CATEGORIES = ("step", "eager", "inference", "latency", "matmul", "data")
CATEGORIES += ("realistic",)
CATEGORIES += ("layer", "phase")
STEP_KINDS = ("factorize", "teacher")
MODES = ("function", "xla", "eager")
#: PyTorch step modes (`worker_torch.py`), in table order.
TORCH_MODES = (
    "torch_eager",
    "torch_channels_last",
    "torch_compile",
    "torch_compile_channels_last",
)
VARIANTS = ("default", "malloc", "onednn-off")
EXPORT_VARIANTS = (
    "savedmodel",
    "keras_function",
    "keras_predict_on_batch",
    "keras_call",
)
MATMUL_KEY = "kfactor/default/matmul/2048"
MATMUL_OFF_KEY = "kfactor/onednn-off/matmul/2048"
DATA_KEY = "kfactor/default/data/dsprites"
MIB = 1 << 20


def category_of(item):
    """The timing category of an item name."""
    kind = item.split("/")[0]
    if kind in STEP_KINDS:
        return "eager" if item.endswith("/eager") else "step"
    if kind == "realistic":
        return "realistic"
    if kind == "infer":
        return "latency" if item.endswith("/1") else "inference"
    if kind in ("assembled", "standalone"):
        return "inference"
    if kind == "export":
        return "latency"
    if kind in ("matmul", "data", "layer", "phase"):
        return kind
    raise ValueError(f"Unknown benchmark item {item!r}")


def group_of(item):
    """Items of a group are measured side by side in each round."""
    parts = item.split("/")
    if parts[0] in ("assembled", "standalone"):
        return f"inference/{parts[1]}"
    if parts[0] in ("matmul", "data"):
        return "reference"
    if parts[0] == "infer":  # a workload at one batch size
        return f"infer/{parts[1]}/{parts[-1]}"
    return f"{parts[0]}/{parts[1]}"


# === Derived figures ===


def _rates(entry):
    return [w["rate"] for w in entry["windows"]]


def _ratio(entries, numerator, denominator):
    if numerator not in entries or denominator not in entries:
        return None
    return stats.summary(
        stats.paired_ratios(
            entries[numerator]["windows"], entries[denominator]["windows"]
        )
    )


def _median(summary):
    return summary["median"] if summary else None


def step_flops(entries, key):
    """FLOPs per image of a step entry (PyTorch's: from kfactor's twin)."""
    entry = entries[key]
    if "flops_per_image" in entry["meta"]:
        return entry["meta"]["flops_per_image"]
    step = entry["item"].split("/")[:2]
    for other in entries.values():
        same_step = other["item"].split("/")[:2] == step
        if same_step and "flops_per_image" in other["meta"]:
            return other["meta"]["flops_per_image"]
    return None


def derive_steps(entries, matmul_gflops):
    steps = {}
    for key, entry in entries.items():
        if entry["category"] not in ("step", "eager"):
            continue
        flops = step_flops(entries, key)
        gflops = None
        if flops:
            gflops = stats.summary([r * flops / 1e9 for r in _rates(entry)])
        steps[key] = {
            "images_per_second": stats.summary(_rates(entry)),
            "other_cpu": stats.summary(
                [w["other_cpu"] for w in entry["windows"]]
            ),
            "flops_per_image": flops,
            "gflops": gflops,
            "share_of_matmul": (
                _median(gflops) / matmul_gflops
                if gflops and matmul_gflops
                else None
            ),
        }
    return steps


def best_windows(entries, keys):
    """Per round, the fastest of `keys`' windows: `[{round, rate, key}]`.

    Only rounds that measured every key count, so that the best is always
    chosen among the same contenders.
    """
    by_round = [stats.rates_by_round(entries[k]["windows"]) for k in keys]
    if not by_round:
        return []
    rounds = sorted(set.intersection(*(set(r) for r in by_round)))
    windows = []
    for r in rounds:
        rate, key = max((rates[r], k) for rates, k in zip(by_round, keys))
        windows.append({"round": r, "rate": rate, "key": key})
    return windows


def torch_step_keys(entries, variant, kind, width):
    """The PyTorch entries of one step, in `TORCH_MODES` order."""
    prefix = f"pytorch/{variant}/{kind}/{width}/"
    return [prefix + m for m in TORCH_MODES if prefix + m in entries]


def derive_torch_ratios(entries, widths):
    """kfactor / PyTorch: `kind/width/env` against the best PyTorch variant
    of each round, `kind/width/env/torch_<mode>` against each variant."""
    ratios = {}
    for variant in ("default", "malloc"):
        for width in widths:
            for kind in STEP_KINDS:
                ours = f"kfactor/{variant}/{kind}/{width}/function"
                keys = torch_step_keys(entries, variant, kind, width)
                if ours not in entries or not keys:
                    continue
                best = best_windows(entries, keys)
                ratio = stats.summary(
                    stats.paired_ratios(entries[ours]["windows"], best)
                )
                if ratio:
                    ratios[f"{kind}/{width}/{variant}"] = ratio
                for key in keys:
                    mode = key.rsplit("/", 1)[1]
                    ratio = _ratio(entries, ours, key)
                    if ratio:
                        ratios[f"{kind}/{width}/{variant}/{mode}"] = ratio
    for width in widths:
        for kind in ("assembled", "standalone"):
            ours = f"kfactor/default/{kind}/{width}/5"
            theirs = f"pytorch/default/{kind}/{width}/5"
            ratio = _ratio(entries, ours, theirs)
            if ratio:
                ratios[f"{kind}/{width}/default"] = ratio
    return ratios


def derive_torch_best(entries, widths):
    """Which PyTorch variant was fastest in each round, per step."""
    best = {}
    for variant in ("default", "malloc"):
        for width in widths:
            for kind in STEP_KINDS:
                keys = torch_step_keys(entries, variant, kind, width)
                if keys:
                    best[f"{kind}/{width}/{variant}"] = [
                        w["key"].rsplit("/", 1)[1]
                        for w in best_windows(entries, keys)
                    ]
    return best


def derive_assembly(entries, widths):
    rows = {}
    for width in widths:
        for framework in ("kfactor", "pytorch"):
            for count in range(1, 6):
                prefix = f"{framework}/default"
                assembled = f"{prefix}/assembled/{width}/{count}"
                standalone = f"{prefix}/standalone/{width}/{count}"
                if assembled not in entries or standalone not in entries:
                    continue
                meta = entries[assembled]["meta"]
                rows[f"{framework}/{width}/{count}"] = {
                    "assembled": stats.summary(_rates(entries[assembled])),
                    "standalone": stats.summary(_rates(entries[standalone])),
                    "speedup": _ratio(entries, assembled, standalone),
                    "flop_ideal_speedup": meta.get("flop_ideal_speedup"),
                    "parameter_bytes": meta.get("parameter_bytes"),
                }
    for key, row in rows.items():
        framework, width, count = key.split("/")
        ideal = row["flop_ideal_speedup"]
        if ideal is None:  # PyTorch's: the same architecture as kfactor's
            twin = rows.get(f"kfactor/{width}/{count}")
            ideal = twin["flop_ideal_speedup"] if twin else None
            row["flop_ideal_speedup"] = ideal
        if ideal and row["speedup"]:
            row["speedup_over_ideal"] = row["speedup"]["median"] / ideal
    return rows


def derive_data(entries, widths):
    if DATA_KEY not in entries:
        return None
    rate = stats.summary(_rates(entries[DATA_KEY]))
    over = {}
    for width in widths:
        for kind in STEP_KINDS:
            step = entries.get(f"kfactor/default/{kind}/{width}/function")
            if step:
                step_rate = stats.summary(_rates(step))["median"]
                over[f"{kind}/{width}"] = rate["median"] / step_rate
    return {
        "images_per_second": rate,
        "over_step": over,
        "min_over_step": min(over.values()) if over else None,
    }


def derive_export(entries, widths):
    rows = {}
    for width in widths:
        for batch in (1, 32):
            keys = {
                v: f"kfactor/default/export/{width}/{v}/{batch}"
                for v in EXPORT_VARIANTS
            }
            if keys["savedmodel"] not in entries:
                continue
            latency = {
                v: stats.summary([1e3 / r for r in _rates(entries[k])])
                for v, k in keys.items()
                if k in entries
            }
            # latency ratio savedmodel / v == rate ratio v / savedmodel
            over = {
                v: _ratio(entries, k, keys["savedmodel"])
                for v, k in keys.items()
                if v != "savedmodel" and k in entries
            }
            rows[f"{width}/{batch}"] = {
                "latency_ms": latency,
                "savedmodel_over": over,
            }
    return rows


def _layer_keys(entries, width):
    keys, index = [], 1
    while f"kfactor/default/layer/{width}/conv{index}" in entries:
        keys.append(f"kfactor/default/layer/{width}/conv{index}")
        index += 1
    return keys


def derive_layers(entries, widths, matmul_gflops, steps):
    """Each convolution of the step alone, and their ceiling of the step.

    The ceiling is, round by round, the layers' FLOPs over the sum of their
    times: the step's GFLOP/s if its losses, optimizer and glue were free.
    """
    derived = {}
    for width in widths:
        keys = _layer_keys(entries, width)
        if not keys:
            continue
        layers = {}
        for key in keys:
            entry = entries[key]
            flops = entry["units_per_call"]
            layers[entry["item"].split("/")[-1]] = {
                "input_shape": entry["meta"]["input_shape"],
                "filters": entry["meta"]["filters"],
                "gflops": stats.summary([r / 1e9 for r in _rates(entry)]),
                "ms_per_call": stats.summary(
                    [1e3 * flops / r for r in _rates(entry)]
                ),
                "share_of_matmul": (
                    stats.summary(_rates(entry))["median"] / 1e9 / matmul_gflops
                    if matmul_gflops
                    else None
                ),
            }
        by_round = [stats.rates_by_round(entries[k]["windows"]) for k in keys]
        rounds = sorted(set.intersection(*(set(r) for r in by_round)))
        flops = [entries[k]["units_per_call"] for k in keys]
        ceiling = [
            sum(flops)
            / sum(f / rates[r] for f, rates in zip(flops, by_round))
            / 1e9
            for r in rounds
        ]
        ceiling = stats.summary(ceiling)
        row = {"layers": layers, "ceiling_gflops": ceiling}
        if matmul_gflops:
            row["ceiling_share_of_matmul"] = ceiling["median"] / matmul_gflops
        step = steps.get(f"kfactor/default/factorize/{width}/function")
        if step and step["gflops"]:
            row["step_share_of_ceiling"] = (
                step["gflops"]["median"] / ceiling["median"]
            )
        derived[width] = row
    return derived


def derive_memory(results):
    return {
        name: {
            "peak_rss_bytes": worker["peak_rss_bytes"],
            "items": worker["items"],
        }
        for name, worker in results["workers"].items()
    }


def _gflops(entry):
    if not entry:
        return None
    return stats.summary([r / 1e9 for r in _rates(entry)])


def _goal(goals, name, value, target, at_least=True):
    if value is not None:
        met = value >= target if at_least else value <= target
        goals.append(
            {
                "goal": name,
                "value": value,
                "target": f"{'>=' if at_least else '<='} {target}",
                "met": met,
            }
        )


def derive_goals(derived):
    """Issues 7 and 15's goals that this run measured: value, target, met."""
    goals = []
    ratios, steps = derived["kfactor_over_pytorch"], derived["steps"]
    for kind, target in (("factorize", 1.3), ("teacher", 1.2)):
        for width in ("full", "narrow"):
            _goal(
                goals,
                f"{kind} step, {width} width, kfactor / best PyTorch "
                "variant of each round",
                _median(ratios.get(f"{kind}/{width}/default")),
                target,
            )
    step = steps.get("kfactor/default/factorize/full/function")
    _goal(
        goals,
        "factorization step, full width, share of the matmul's GFLOP/s",
        step and step["share_of_matmul"],
        0.6,
    )
    layers = derived.get("layers", {}).get("full")
    _goal(
        goals,
        "the step's convolutions alone (ceiling), full width, share of "
        "the matmul's GFLOP/s",
        layers and layers.get("ceiling_share_of_matmul"),
        0.8,
    )
    for width in ("full", "narrow"):
        row = derived["assembly"].get(f"kfactor/{width}/5")
        _goal(
            goals,
            f"assembled 5-task speed-up / FLOP-ideal speed-up ({width})",
            row and row.get("speedup_over_ideal"),
            1.0,
        )
        _goal(
            goals,
            f"assembled 5-task inference, kfactor / PyTorch ({width})",
            _median(ratios.get(f"assembled/{width}/default")),
            1.2,
        )
    data = derived["data"]
    if data:
        over = [v for k, v in data["over_step"].items() if "factorize" in k]
        _goal(
            goals,
            "data generation / factorization step (slowest ratio)",
            min(over) if over else None,
            10,
        )
    slowdowns = [
        _median(row["savedmodel_over"].get("keras_function"))
        for row in derived["export"].values()
    ]
    slowdowns = [v for v in slowdowns if v is not None]
    _goal(
        goals,
        "SavedModel latency / in-process tf.function (worst batch size)",
        max(slowdowns) if slowdowns else None,
        1.2,
        at_least=False,
    )
    return goals


def derive(results):
    """Every figure the table shows, from the raw windows."""
    entries = results["entries"]
    widths = results["config"]["widths"]
    matmul_gflops = _gflops(entries.get(MATMUL_KEY))
    others = [w["other_cpu"] for e in entries.values() for w in e["windows"]]
    derived = {
        "matmul_gflops": matmul_gflops,
        "matmul_gflops_onednn_off": _gflops(entries.get(MATMUL_OFF_KEY)),
        "steps": derive_steps(entries, _median(matmul_gflops)),
        "kfactor_over_pytorch": derive_torch_ratios(entries, widths),
        "pytorch_best_variant": derive_torch_best(entries, widths),
        "onednn_on_over_off": _ratio(
            entries,
            "kfactor/default/factorize/full/function",
            "kfactor/onednn-off/factorize/full/function",
        ),
        "assembly": derive_assembly(entries, widths),
        "data": derive_data(entries, widths),
        "export": derive_export(entries, widths),
        "memory": derive_memory(results),
        "other_cpu": stats.summary(others),
    }
    derived["layers"] = derive_layers(
        entries, widths, _median(matmul_gflops), derived["steps"]
    )
    derived["phases"] = phase_report.derive_phases(entries, widths)
    derived["realistic"] = realistic_report.derive_realistic(
        entries, _median(matmul_gflops)
    )
    derived["inference"] = realistic_report.derive_inference(entries)
    derived["goals"] = derive_goals(derived) + realistic_report.goals(derived)
    return derived


# === Markdown ===


def _number(value, digits=None):
    if value is None:
        return "-"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def _percent(value):
    return "-" if value is None else f"{value:.0%}"


def _loads(values):
    return "/".join(f"{v:.1f}" for v in values) if values else "-"


def _spread(summary, digits=None, suffix=""):
    """`median [min, max]`."""
    if not summary:
        return "-"
    median, low, high = (
        _number(summary[k], digits) for k in ("median", "min", "max")
    )
    return f"{median}{suffix} [{low}, {high}]"


def _header(results):
    machine, workers = results["machine"], results["workers"]
    infos = [w["info"] for w in workers.values()]
    tf_info = next(  # a default worker's; there is always one
        w["info"]
        for w in workers.values()
        if w["framework"] == "kfactor" and w["variant"] == "default"
    )
    torch_info = next((i for i in infos if i["framework"] == "pytorch"), None)
    gpus = tf_info["gpus"]
    device = ", ".join(gpus) if gpus else "no GPU"
    versions = (
        f"kfactor {tf_info['kfactor']}, TensorFlow {tf_info['tensorflow']}, "
        f"Keras {tf_info['keras']}"
    )
    if torch_info:
        versions += f", PyTorch {torch_info['torch']}"
    config = results["config"]
    others = results["derived"]["other_cpu"]
    onednn = tf_info["env"].get("TF_ENABLE_ONEDNN_OPTS")
    flags = machine.get("cpu_flags")
    flags = ", ".join(flags) if flags else "not known"
    lines = [
        f"## kfactor benchmark ({machine['started']})",
        "",
        f"- machine: {machine['cpu_model']}, {machine['usable_cores']} "
        f"cores, {_number((machine['memory_bytes'] or 0) / 2**30, 0)} GiB; "
        f"{device}; {machine['hostname']}",
        f"- CPU flags (of AVX2 / AVX-512 / VNNI / AMX): {flags}",
        f"- software: {versions}",
        f"- {config['timing']['repeats']} interleaved rounds"
        f"{' (quick)' if config['quick'] else ''}, batch "
        f"{config['batch_size']}, took "
        f"{results['duration_seconds'] / 60:.1f} min; figures are "
        "median [min, max] over windows",
        f"- load average (1/5/15 min) at start: "
        f"{_loads(machine['load_average_start'])}, at end: "
        f"{_loads(machine['load_average_end'])}; other processes used "
        f"{_spread(others, 2)} of all cores during the kept windows "
        f"(other CPU); contended windows were measured again "
        f"{results['retries']['retried_windows']} times",
        f"- env: TF_ENABLE_ONEDNN_OPTS={onednn} in the kfactor workers "
        "(`kfactor.configure_cpu()` sets 1 when unset) except onednn-off "
        "rows (0); "
        "malloc rows: MALLOC_MMAP_THRESHOLD_=33554432 "
        "MALLOC_TRIM_THRESHOLD_=17179869184, other rows glibc's defaults",
    ]
    if torch_info:
        policy = torch_info["env"].get("OMP_WAIT_POLICY")
        lines.append(
            f"- PyTorch: {torch_info['threads']} threads, "
            f"OMP_WAIT_POLICY={policy} (libgomp's spinning threads slow "
            "it down several times on a shared machine)"
        )
    if gpus and torch_info:
        lines.append("- the PyTorch reference runs on the CPU")
    return lines


def _step_rows(results):
    derived, entries = results["derived"], results["entries"]
    steps, ratios = derived["steps"], derived["kfactor_over_pytorch"]
    rows = [
        "| step | width | framework | mode | env | images/s | GFLOP/s "
        "| of matmul | kfactor / best PyTorch | other CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted(steps, key=lambda k: _step_order(entries[k]))
    for key in keys:
        entry, step = entries[key], steps[key]
        kind, width, *mode = entry["item"].split("/")
        ratio = "-"
        if entry["framework"] == "kfactor" and mode == ["function"]:
            ratio = _spread(ratios.get(f"{kind}/{width}/{entry['variant']}"))
        share = step["share_of_matmul"]
        rows.append(
            f"| {kind} | {width} | {entry['framework']} | "
            f"{mode[0] if mode else '-'} | {entry['variant']} | "
            f"{_spread(step['images_per_second'])} | "
            f"{_number(_median(step['gflops']), 1)} | "
            f"{'-' if share is None else f'{share:.0%}'} | {ratio} | "
            f"{_percent(_median(step['other_cpu']))} |"
        )
    return rows


def _torch_variant_rows(results):
    """kfactor / each PyTorch variant, and which variant was the best."""
    derived = results["derived"]
    ratios, best = (
        derived["kfactor_over_pytorch"],
        derived["pytorch_best_variant"],
    )
    if not best:
        return []
    header = " | ".join(m.removeprefix("torch_") for m in TORCH_MODES)
    rows = [
        "",
        "kfactor (tf.function) / each PyTorch variant, per-round ratios; "
        "the best-PyTorch column of the table above divides, round by "
        "round, by the fastest of them:",
        "",
        f"| step | width | env | {header} | best PyTorch in each round |",
        "|---|---|---|" + "---|" * len(TORCH_MODES) + "---|",
    ]
    for key, winners in best.items():
        kind, width, variant = key.split("/")
        cells = [_spread(ratios.get(f"{key}/{m}"), 2) for m in TORCH_MODES]
        names = ", ".join(w.removeprefix("torch_") for w in winners)
        rows.append(
            f"| {kind} | {width} | {variant} | {' | '.join(cells)} | {names} |"
        )
    return rows


def _step_order(entry):
    kind, width, *mode = entry["item"].split("/")
    mode = mode[0] if mode else "function"
    return (
        STEP_KINDS.index(kind),
        width,
        (MODES + TORCH_MODES).index(mode),
        VARIANTS.index(entry["variant"]),
        entry["framework"],
    )


def _flops_lines(results):
    derived, entries = results["derived"], results["entries"]
    off = derived["matmul_gflops_onednn_off"]
    off = f" ({_spread(off, 1)} with oneDNN off)" if off else ""
    lines = [
        "",
        f"Dense fp32 2048² matmul: {_spread(derived['matmul_gflops'], 1)} "
        f"GFLOP/s{off}; the of-matmul column divides by the oneDNN-on "
        "figure. Step FLOPs per image by formula (forward MACs of the "
        "graph's Conv2D and MatMul ops; 1 MAC = 2 FLOPs): factorization "
        "2 (3 M_trained + M_teacher), teacher 2 · 3 M_teacher:",
    ]
    seen = set()
    for key, entry in entries.items():
        macs = entry["meta"].get("forward_macs_per_image")
        if not key.endswith("/function") or entry["item"] in seen:
            continue
        if macs and entry["framework"] == "kfactor":
            seen.add(entry["item"])
            parts = ", ".join(
                f"M_{k} {v / 1e6:.1f} M" for k, v in sorted(macs.items())
            )
            lines.append(
                f"- {entry['item']}: {parts} -> "
                f"{entry['meta']['flops_per_image'] / 1e9:.3f} GFLOP"
            )
    return lines


def _layer_rows(results):
    derived = results["derived"].get("layers")
    if not derived:
        return []
    lines = [
        "",
        "### The factorization step's convolutions, each alone",
        "",
        "Six trained networks' forward + input and weight gradients, plus "
        "the teacher's forward, of one layer (batch as the steps; FLOPs "
        "counted as the step counts them). The ceiling divides all the "
        "layers' FLOPs by the sum of their times: the step's GFLOP/s if "
        "everything but the convolutions were free.",
        "",
        "| width | layer | input | filters | ms a batch | GFLOP/s "
        "| of matmul |",
        "|---|---|---|---|---|---|---|",
    ]
    for width, row in derived.items():
        for name, layer in row["layers"].items():
            shape = "x".join(str(d) for d in layer["input_shape"][1:])
            share = layer["share_of_matmul"]
            lines.append(
                f"| {width} | {name} | {shape} | {layer['filters']} | "
                f"{_spread(layer['ms_per_call'], 1)} | "
                f"{_spread(layer['gflops'], 1)} | "
                f"{'-' if share is None else f'{share:.0%}'} |"
            )
    for width, row in derived.items():
        share = row.get("ceiling_share_of_matmul")
        step = row.get("step_share_of_ceiling")
        lines += [
            "",
            f"Ceiling, {width}: {_spread(row['ceiling_gflops'], 1)} GFLOP/s"
            + ("" if share is None else f" = {share:.0%} of the matmul")
            + ("" if step is None else f"; the step reaches {step:.0%} of it")
            + ".",
        ]
    return lines


def _assembly_rows(results):
    derived = results["derived"]
    rows = [
        "| width | framework | N | assembled images/s | N standalone "
        "images/s | speed-up | FLOP-ideal | of ideal | parameter MiB "
        "(assembled / standalone) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in derived["assembly"].items():
        framework, width, count = key.split("/")
        params = row["parameter_bytes"]
        params = (
            f"{params['assembled'] / MIB:.2f} / "
            f"{params['standalone'] / MIB:.2f}"
            if params
            else "-"
        )
        rows.append(
            f"| {width} | {framework} | {count} | "
            f"{_spread(row['assembled'])} | {_spread(row['standalone'])} | "
            f"{_spread(row['speedup'], 2)} | "
            f"{_number(row['flop_ideal_speedup'], 2)} | "
            f"{_number(row.get('speedup_over_ideal'), 2)} | {params} |"
        )
    ratios = derived["kfactor_over_pytorch"]
    for key in sorted(ratios):
        kind, width, _ = key.split("/")
        if kind in ("assembled", "standalone"):
            rows.append("")
            rows.append(
                f"kfactor / PyTorch, {kind} 5-task inference, {width}: "
                f"{_spread(ratios[key], 2)}"
            )
    return rows


def _data_lines(results):
    data = results["derived"]["data"]
    if not data:
        return []
    over = ", ".join(
        f"{_number(v, 1)}x the {k} step"
        for k, v in sorted(data["over_step"].items())
    )
    over = f" = {over} (tf.function, default env)" if over else ""
    return [
        "",
        "### Procedural data generation",
        "",
        f"`kfactor.lab.datasets.dsprites_dataset` (batch "
        f"{results['config']['batch_size']}): "
        f"{_spread(data['images_per_second'])} images/s{over}.",
    ]


def _export_rows(results):
    export = results["derived"]["export"]
    if not export:
        return []
    rows = [
        "",
        "### Exported SavedModel latency vs in-process Keras (ms a call)",
        "",
        "| width | batch | SavedModel | Keras tf.function | "
        "Keras predict_on_batch | Keras eager call | SavedModel / "
        "tf.function |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, row in export.items():
        width, batch = key.split("/")
        latency = row["latency_ms"]
        cells = [_spread(latency.get(v), 2) for v in EXPORT_VARIANTS]
        ratio = _spread(row["savedmodel_over"].get("keras_function"), 2)
        rows.append(f"| {width} | {batch} | {' | '.join(cells)} | {ratio} |")
    return rows


def _memory_rows(results):
    rows = [
        "",
        "### Peak resident memory (ru_maxrss) of each worker",
        "",
        "| worker | env | items | peak RSS MiB |",
        "|---|---|---|---|",
    ]
    for name, worker in results["workers"].items():
        items = ", ".join(worker["items"])
        if len(items) > 70:
            items = f"{len(worker['items'])} items"
        rows.append(
            f"| {name} | {worker['variant']} | {items} | "
            f"{worker['peak_rss_bytes'] / MIB:,.0f} |"
        )
    return rows


def _goal_rows(results):
    goals = results["derived"]["goals"]
    if not goals:
        return []
    rows = [
        "",
        "### Issues 7 and 15's goals (medians of this run)",
        "",
        "| goal | measured | target | met |",
        "|---|---|---|---|",
    ]
    for goal in goals:
        rows.append(
            f"| {goal['goal']} | {_number(goal['value'], 2)} | "
            f"{goal['target']} | {'yes' if goal['met'] else 'no'} |"
        )
    return rows


def markdown(results):
    """The results as markdown: header, then one table per measurement."""
    lines = _header(results)
    lines += ["", "### Training steps (images/s)", ""]
    lines += _step_rows(results)
    lines += _torch_variant_rows(results)
    onednn = results["derived"]["onednn_on_over_off"]
    if onednn:
        lines += [
            "",
            f"oneDNN on / off, full-width factorization step: "
            f"{_spread(onednn, 2)}",
        ]
    lines += _flops_lines(results)
    lines += _layer_rows(results)
    lines += phase_report.phase_rows(results["derived"])
    if results["derived"]["assembly"]:
        lines += ["", "### Assembled N-task inference vs N standalone", ""]
        lines += _assembly_rows(results)
    lines += realistic_report.markdown_rows(results["derived"])
    lines += _data_lines(results)
    lines += _export_rows(results)
    lines += _memory_rows(results)
    lines += _goal_rows(results)
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        results = json.load(f)
    results["derived"] = derive(results)
    print(markdown(results))


if __name__ == "__main__":
    main()
