"""The phase figures (`phase_report.py`) on synthetic windows (no timing)."""

from benchmarks import phase_report
from benchmarks import report

BATCH = 128


def _entry(item, ms_by_round, framework="kfactor"):
    """A phase entry whose windows take `ms_by_round[r]` ms a batch."""
    return {
        "framework": framework,
        "variant": "default",
        "item": item,
        "category": report.category_of(item),
        "unit": "images",
        "units_per_call": BATCH,
        "meta": {},
        "windows": [
            {"round": r, "rate": 1e3 * BATCH / ms, "other_cpu": 0.0}
            for r, ms in enumerate(ms_by_round)
        ],
    }


#: Cumulative ms a batch of each phase, two rounds.
KFACTOR_MS = {
    "teacher": [10, 10],
    "forward": [30, 40],
    "loss": [35, 45],
    "gradients": [80, 90],
    "step": [90, 100],
}
EAGER_MS = {
    "teacher": [20, 20],
    "forward": [50, 60],
    "loss": [60, 70],
    "gradients": [150, 140],
    "step": [170, 160],  # the fastest PyTorch step of round 1
}
CHANNELS_LAST_MS = {
    "teacher": [15, 15],
    "forward": [45, 60],
    "loss": [55, 65],
    "gradients": [140, 150],
    "step": [150, 170],  # the fastest PyTorch step of round 0
}


def _entries(width="narrow"):
    entries = {}
    for phase, ms in KFACTOR_MS.items():
        item = f"phase/{width}/{phase}"
        entries[f"kfactor/default/{item}"] = _entry(item, ms)
    for variant, series in (
        ("eager", EAGER_MS),
        ("channels_last", CHANNELS_LAST_MS),
    ):
        for phase, ms in series.items():
            item = f"phase/{width}/torch_{variant}/{phase}"
            entries[f"pytorch/default/{item}"] = _entry(item, ms, "pytorch")
    return dict(sorted(entries.items()))  # as a saved JSON has them


def _close(a, b):
    return abs(a - b) < 1e-9 * max(1.0, abs(b))


def test_phase_items_pair_across_frameworks():
    ours, theirs = "phase/full/loss", "phase/full/torch_compile/loss"
    assert report.group_of(ours) == report.group_of(theirs) == "phase/full"
    assert report.category_of(ours) == report.category_of(theirs) == "phase"
    assert set(phase_report.PHASES) == set(KFACTOR_MS)


def test_increments_and_shares_of_the_step():
    figures = phase_report.derive_phases(_entries(), ["narrow", "full"])
    assert list(figures) == ["narrow"]  # no full-width phases measured
    ours = figures["narrow"]["series"]["kfactor"]
    assert list(ours) == list(phase_report.PHASES)
    # gradients: 80 - 35 = 45 ms, then 90 - 45 = 45 ms.
    assert _close(ours["gradients"]["increment_ms"]["median"], 45.0)
    assert _close(ours["forward"]["increment_ms"]["min"], 20.0)
    assert _close(ours["forward"]["increment_ms"]["max"], 30.0)
    assert _close(ours["teacher"]["increment_ms"]["median"], 10.0)
    assert _close(ours["step"]["ms"]["median"], 95.0)
    # forward adds 20 of 90 ms, then 30 of 100 ms.
    assert _close(ours["forward"]["share_of_step"]["median"], (2 / 9 + 0.3) / 2)


def test_ratios_per_increment_against_each_variant_and_the_best():
    figures = phase_report.derive_phases(_entries(), ["narrow"])["narrow"]
    assert figures["fastest_pytorch_variant"] == ["channels_last", "eager"]
    ratios = figures["kfactor_over_pytorch"]
    assert list(ratios) == ["eager", "channels_last", "best"]
    # Eager's backward: 90 then 70 ms against kfactor's 45 and 45.
    eager = ratios["eager"]["gradients"]
    assert _close(eager["min"], 70 / 45) and _close(eager["max"], 2.0)
    # Best: channels_last's step in round 0 (+10 over 140), eager's in
    # round 1 (+20 over 140); kfactor adds 10 in both.
    best = ratios["best"]["step"]
    assert _close(best["min"], 1.0) and _close(best["max"], 2.0)
    # The teacher: 15 (channels_last) then 20 (eager) against 10.
    assert _close(ratios["best"]["teacher"]["median"], 1.75)
    # Up to the loss: 55 / 35 (channels_last), then 70 / 45 (eager).
    cumulative = figures["cumulative_kfactor_over_pytorch"]["best"]["loss"]
    assert _close(cumulative["min"], 70 / 45)
    assert _close(cumulative["max"], 55 / 35)


def test_nonpositive_increments_have_no_ratio():
    ours = {0: 5.0, 1: -1.0, 2: 4.0}
    theirs = {0: 10.0, 1: 3.0, 2: -2.0}
    assert phase_report.their_over_ours(ours, theirs) == [2.0]


def test_the_table_says_where_the_step_time_goes():
    entries = _entries()
    derived = {"phases": phase_report.derive_phases(entries, ["narrow"])}
    table = "\n".join(phase_report.phase_rows(derived))
    assert "### Where the factorization step's time goes" in table
    header = (
        "| width | phase | kfactor ms | kfactor +ms | of step | eager +ms "
        "| channels_last +ms | kfactor / best | kfactor / eager "
        "| kfactor / channels_last |"
    )
    assert header in table
    assert "| narrow | gradients | 85.0 [80.0, 90.0] | 45.0 [45.0, 45.0] " in (
        table
    )
    assert "narrow: fastest PyTorch step in each round: channels_last, " in (
        table
    )
    # The whole step: 150 / 90 then 160 / 100.
    assert "up to each phase: teacher 1.75 [1.50, 2.00], forward " in table
    assert "step 1.63 [1.60, 1.67]." in table
    assert phase_report.phase_rows({"phases": {}}) == []


def test_report_derives_the_phases_with_the_rest():
    results = {"config": {"widths": ["narrow"]}, "entries": _entries()}
    derived = report.derive({**results, "workers": {}})
    assert derived["phases"]["narrow"]["series"]["torch_eager"]
