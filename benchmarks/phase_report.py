"""Where the factorization step's time goes: the `phases` part's figures.

The items `phase/{width}/{phase}` (kfactor, `phases.py`) and
`phase/{width}/torch_{variant}/{phase}` (`torch_reference.py`) time
cumulative phases of the step. Per width and series (kfactor, each PyTorch
variant), round by round: each phase's ms a batch, its increment over the
previous phase, and kfactor / PyTorch per increment (their ms over ours, a
speed ratio as the step's: above 1, kfactor is faster at that phase),
against each variant and against the variant whose full step was the
fastest of the round. Standard library only, like `report.py`.
"""

from benchmarks import stats

PHASES = ("teacher", "forward", "loss", "gradients", "step")
#: What each phase adds to the previous one.
PHASE_WORK = {
    "teacher": "the frozen teacher's inference forward",
    "forward": "the six trained networks' forward (training mode)",
    "loss": "the objective (kfactor: `_forward_and_losses`, with any batch "
    "checks it makes)",
    "gradients": "the backward pass",
    "step": "applying the gradients: Adam, weight decay (kfactor: and the "
    "train step's metrics and any checks it makes)",
}
KFACTOR = "kfactor"
TORCH_PREFIX = "torch_"
#: PyTorch variants in table order (`torch_reference.VARIANTS`).
TORCH_VARIANTS = ("eager", "channels_last", "compile", "compile_channels_last")
BEST = "best"


def phase_series(entries, width):
    """`{series: {phase: entry}}` of the default env's phase entries, in
    `PHASES` order (a saved JSON has its entries sorted by name)."""
    series = {}
    for entry in entries.values():
        parts = entry["item"].split("/")
        if parts[0] != "phase" or parts[1] != width:
            continue
        if entry["variant"] != "default" or parts[-1] not in PHASES:
            continue
        name = KFACTOR if len(parts) == 3 else parts[2]
        series.setdefault(name, {})[parts[-1]] = entry
    order = [KFACTOR] + [TORCH_PREFIX + v for v in TORCH_VARIANTS]
    return {
        name: {p: series[name][p] for p in PHASES if p in series[name]}
        for name in order
        if name in series
    }


def ms_by_round(entry):
    """`{round: ms a batch}` of a phase entry."""
    rates = stats.rates_by_round(entry["windows"])
    return {r: 1e3 * entry["units_per_call"] / v for r, v in rates.items()}


def increments_by_round(phases):
    """`{phase: {round: ms}}`: each phase's ms minus the previous phase's,
    in the rounds both measured (the first phase: its own ms)."""
    increments, previous = {}, None
    for phase in PHASES:
        if phase not in phases:
            continue
        ms = ms_by_round(phases[phase])
        if previous is None:
            increments[phase] = ms
        else:
            increments[phase] = {
                r: ms[r] - previous[r] for r in ms if r in previous
            }
        previous = ms
    return increments


def fastest_variant_by_round(series):
    """`{round: series name}`: the PyTorch variant whose step was fastest,
    in rounds that measured every variant's step."""
    steps = {
        name: ms_by_round(phases["step"])
        for name, phases in series.items()
        if name != KFACTOR and "step" in phases
    }
    if not steps:
        return {}
    rounds = set.intersection(*(set(ms) for ms in steps.values()))
    return {
        r: min(steps, key=lambda name: steps[name][r]) for r in sorted(rounds)
    }


def their_over_ours(ours, theirs):
    """Per round, their ms over ours (rounds where both are > 0)."""
    return [
        theirs[r] / ours[r]
        for r in sorted(ours)
        if r in theirs and ours[r] > 0 and theirs[r] > 0
    ]


def of_fastest(by_series, fastest):
    """`{phase: {round: ms}}` of the round's fastest PyTorch variant, from
    `{series: {phase: {round: ms}}}`."""
    best = {}
    for r, name in fastest.items():
        for phase, ms in by_series[name].items():
            if r in ms:
                best.setdefault(phase, {})[r] = ms[r]
    return best


def kfactor_over(by_series, fastest):
    """`{variant or "best": {phase: summary}}`: per round, their ms over
    kfactor's, for each PyTorch series of `{series: {phase: {round: ms}}}`
    and the round's fastest."""
    by_series = dict(by_series)
    if fastest:
        by_series[BEST] = of_fastest(by_series, fastest)
    ours = by_series.pop(KFACTOR)
    return {
        name.removeprefix(TORCH_PREFIX): {
            phase: stats.summary(their_over_ours(our_ms, theirs.get(phase, {})))
            for phase, our_ms in ours.items()
        }
        for name, theirs in by_series.items()
    }


def _series_rows(phases, increments):
    step = ms_by_round(phases["step"]) if "step" in phases else {}
    rows = {}
    for phase, added in increments.items():
        shares = [added[r] / step[r] for r in added if step.get(r)]
        rows[phase] = {
            "ms": stats.summary(ms_by_round(phases[phase]).values()),
            "increment_ms": stats.summary(added.values()),
            "share_of_step": stats.summary(shares),
        }
    return rows


def derive_width(entries, width):
    """The phase figures of one width, or None without kfactor's phases."""
    series = phase_series(entries, width)
    if KFACTOR not in series:
        return None
    increments = {
        name: increments_by_round(phases) for name, phases in series.items()
    }
    cumulative = {
        name: {phase: ms_by_round(entry) for phase, entry in phases.items()}
        for name, phases in series.items()
    }
    fastest = fastest_variant_by_round(series)
    return {
        "series": {
            name: _series_rows(phases, increments[name])
            for name, phases in series.items()
        },
        "kfactor_over_pytorch": kfactor_over(increments, fastest),
        "cumulative_kfactor_over_pytorch": kfactor_over(cumulative, fastest),
        "fastest_pytorch_variant": [
            fastest[r].removeprefix(TORCH_PREFIX) for r in sorted(fastest)
        ],
    }


def derive_phases(entries, widths):
    """`{width: figures}` of the widths whose phases were measured."""
    derived = {}
    for width in widths:
        figures = derive_width(entries, width)
        if figures:
            derived[width] = figures
    return derived


# === Markdown ===


def _number(value):
    if value is None:
        return "-"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def _spread(summary):
    if not summary:
        return "-"
    median, low, high = (_number(summary[k]) for k in ("median", "min", "max"))
    return f"{median} [{low}, {high}]"


def _median(summary):
    return summary["median"] if summary else None


def _header(torch_names, ratio_names):
    cells = ["width", "phase", "kfactor ms", "kfactor +ms", "of step"]
    cells += [f"{name} +ms" for name in torch_names]
    cells += [f"kfactor / {name}" for name in ratio_names]
    return [
        "| " + " | ".join(cells) + " |",
        "|" + "---|" * len(cells),
    ]


def _width_rows(width, figures, torch_names, ratio_names):
    ours = figures["series"][KFACTOR]
    rows = []
    for phase, row in ours.items():
        share = _median(row["share_of_step"])
        cells = [
            width,
            phase,
            _spread(row["ms"]),
            _spread(row["increment_ms"]),
            "-" if share is None else f"{share:.0%}",
        ]
        for name in torch_names:
            theirs = figures["series"].get(TORCH_PREFIX + name, {})
            added = theirs.get(phase, {}).get("increment_ms")
            cells.append(_number(_median(added)))
        for name in ratio_names:
            ratios = figures["kfactor_over_pytorch"].get(name, {})
            cells.append(_spread(ratios.get(phase)))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def phase_rows(derived):
    """The "where the step's time goes" table (empty without phases)."""
    phases = derived.get("phases")
    if not phases:
        return []
    torch_names = []
    for figures in phases.values():
        for name in figures["series"]:
            short = name.removeprefix(TORCH_PREFIX)
            if name != KFACTOR and short not in torch_names:
                torch_names.append(short)
    ratio_names = ([BEST] if torch_names else []) + torch_names
    lines = [
        "",
        "### Where the factorization step's time goes (ms a batch)",
        "",
        "Cumulative phases, each timed alone with everything before it; "
        "+ms is what a phase adds to the previous one (round by round), "
        "`of step` its share of kfactor's full step. kfactor / PyTorch "
        "divides their +ms by ours per round (above 1: kfactor is faster "
        "at that phase); `best` is the PyTorch variant whose full step was "
        "the fastest of the round. Phases add:",
        "",
    ]
    lines += [f"- {phase}: {work}" for phase, work in PHASE_WORK.items()]
    lines += [""] + _header(torch_names, ratio_names)
    for width, figures in phases.items():
        lines += _width_rows(width, figures, torch_names, ratio_names)
    for width, figures in phases.items():
        lines += _cumulative_lines(width, figures)
    return lines


def _cumulative_lines(width, figures):
    """The fastest PyTorch variants, and kfactor / best PyTorch of the
    cumulative phases (the step's: the step goal's ratio)."""
    fastest = figures["fastest_pytorch_variant"]
    if not fastest:
        return []
    cumulative = figures["cumulative_kfactor_over_pytorch"][BEST]
    ratios = ", ".join(
        f"{phase} {_spread(summary)}" for phase, summary in cumulative.items()
    )
    return [
        "",
        f"{width}: fastest PyTorch step in each round: {', '.join(fastest)}; "
        f"kfactor / best PyTorch up to each phase: {ratios}.",
    ]
