"""Warm-up, window sizing and interleaved rounds over the workers' items.

Each item of each worker is an `Entry`. `calibrate` warms it up (its first,
tracing call ran while the worker started) and sizes its window to a target
duration. `run_rounds` then visits every entry once a round, groups of
compared items side by side, in an order that reverses every round. A
window during which other processes used more than `max_other` of the
cores can be measured again (`Retries`), within a time budget for the run.
"""

import dataclasses
import time

from benchmarks import protocol
from benchmarks import report
from benchmarks.workers import Worker


@dataclasses.dataclass
class Timing:
    """How long to warm up and measure.

    Attributes:
        repeats: rounds, i.e. windows per item.
        warm_s: each item runs until one run of doubling calls takes this
            long (after its first, tracing call); that run sizes its window.
        window_s: target seconds of a window, by category.
        eager_windows: windows of the (slow) eager items.
        max_other: a window during which other processes used more than
            this share of all cores is measured again (None: never).
        retry_budget_s: seconds all such retries may take in the run.
    """

    repeats: int
    warm_s: float
    window_s: dict
    eager_windows: int
    max_other: float = None
    retry_budget_s: float = 0.0


@dataclasses.dataclass
class Entry:
    """One measured item of one worker."""

    worker: Worker
    item: str
    category: str
    max_windows: int
    calls: int = 0
    first_call_seconds: float = 0.0
    seconds_per_call: float = 0.0
    windows: list = dataclasses.field(default_factory=list)

    @property
    def key(self):
        spec = self.worker.spec
        return f"{spec.framework}/{spec.variant}/{self.item}"

    @property
    def units_per_call(self):
        return self.worker.items[self.item]["units_per_call"]


def make_entries(workers, timing):
    entries = []
    for worker in workers:
        for item in worker.items:
            category = report.category_of(item)
            windows = timing.repeats
            if category == "eager":
                windows = min(windows, timing.eager_windows)
            entries.append(Entry(worker, item, category, windows))
    return entries


def group_entries(entries):
    """Entries grouped by what they compare, groups in first-seen order."""
    groups = {}
    for entry in entries:
        groups.setdefault(report.group_of(entry.item), []).append(entry)
    return list(groups.values())


def calibrate(entry, timing):
    """Warms `entry` up and sizes its window; returns seconds spent."""
    start = time.perf_counter()
    meta = entry.worker.items[entry.item]["meta"]
    entry.first_call_seconds = meta.get("first_call_seconds", 0.0)
    calls = 1
    while True:
        seconds = entry.worker.run(entry.item, calls)["seconds"]
        if seconds >= timing.warm_s or calls >= 1 << 16:
            break
        calls *= 2
    entry.seconds_per_call = seconds / calls
    target = timing.window_s[entry.category]
    entry.calls = max(1, round(target / max(entry.seconds_per_call, 1e-9)))
    return time.perf_counter() - start


def other_cpu_now(seconds=0.5):
    """Share of all cores busy over `seconds` while we and workers idle."""
    start = protocol.cpu_jiffies()
    time.sleep(seconds)
    return protocol.other_cpu_share(start, protocol.cpu_jiffies(), seconds)


class Retries:
    """Measures contended windows again, within a time budget.

    A window during which other processes used more than `max_other` of
    the cores is retried after waiting (up to 10 s) for a quiet machine;
    the least contended try is kept, the others are recorded as discarded.
    """

    def __init__(self, max_other, budget_s):
        self.max_other, self.budget_s = max_other, budget_s
        self.spent_s, self.count = 0.0, 0

    def contended(self, window):
        other = window["other_cpu"]
        return (
            self.max_other is not None
            and other is not None
            and other > self.max_other
        )

    def allowed(self):
        return self.spent_s < self.budget_s

    def wait_for_quiet(self, limit_s=10.0):
        start = time.perf_counter()
        while time.perf_counter() - start < limit_s:
            other = other_cpu_now()
            if other is None or other <= self.max_other:
                break


def timed_window(entry, round_index):
    answer = entry.worker.run(entry.item, entry.calls)
    units = entry.calls * entry.units_per_call
    return {
        **answer,
        "round": round_index,
        "calls": entry.calls,
        "rate": units / answer["seconds"],
    }


def measure_window(entry, round_index, retries):
    """One window of `entry`, measured again while contended (budget)."""
    tries = [timed_window(entry, round_index)]
    while retries.contended(tries[-1]) and retries.allowed():
        start = time.perf_counter()
        retries.wait_for_quiet()
        tries.append(timed_window(entry, round_index))
        retries.spent_s += time.perf_counter() - start
        retries.count += 1
    best = min(tries, key=lambda w: w["other_cpu"] or 0.0)
    discarded = [w for w in tries if w is not best]
    entry.windows.append({**best, "discarded": discarded})


def run_rounds(groups, timing):
    """`timing.repeats` rounds over every entry, direction alternating."""
    start = time.perf_counter()
    retries = Retries(timing.max_other, timing.retry_budget_s)
    for round_index in range(timing.repeats):
        forward = round_index % 2 == 0
        for group in groups if forward else groups[::-1]:
            for entry in group if forward else group[::-1]:
                if len(entry.windows) < entry.max_windows:
                    measure_window(entry, round_index, retries)
        elapsed = time.perf_counter() - start
        print(
            f"round {round_index + 1}/{timing.repeats} done, {elapsed:.0f} s"
            f" ({retries.count} retries of contended windows so far)"
        )
    return {"retried_windows": retries.count, "retry_seconds": retries.spent_s}


def estimated_seconds(entries):
    """Seconds the rounds will take, from the calibration."""
    return sum(e.max_windows * e.calls * e.seconds_per_call for e in entries)


def measure(workers, timing):
    entries = make_entries(workers, timing)
    groups = group_entries(entries)
    for group in groups:
        for entry in group:
            spent = calibrate(entry, timing)
            print(
                f"warm: {entry.key}: first call {entry.first_call_seconds:.1f}"
                f" s, {entry.calls} calls a window, {spent:.1f} s"
            )
    minutes = estimated_seconds(entries) / 60
    print(f"measuring {timing.repeats} rounds, about {minutes:.1f} min")
    return entries, run_rounds(groups, timing)
