"""kfactor's benchmark suite: one run, interleaved windows, JSON + table.

    python -m benchmarks.run                 # everything (about 20 min, CPU)
    python -m benchmarks.run --quick         # smoke run (1-3 min)

Measures (see the README's performance section and issue 7):

1. training steps, images/s: the factorization step (`kfactor.Factorizer`,
   teacher + common + 5 task factors) and the teacher step, at each width,
   as `tf.function`, XLA and eager;
2. the PyTorch reference (`torch_kf_step.py`) interleaved with them, and
   the ratios kfactor / PyTorch, with glibc's default malloc and with
   `MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184`;
   the full-width step also with oneDNN off (`TF_ENABLE_ONEDNN_OPTS=0`);
3. achieved GFLOP/s by formula (`flops.py`) as a share of a 2048^2 fp32
   matmul measured in the same run;
4. assembled N-task inference vs N standalone factor networks (N = 1..5);
5. procedural data generation images/s and its ratio to the steps;
6. exported SavedModel latency at batch 1 and 32 vs the in-process model;
7. peak resident memory of every worker (the factorization step's too).

Every configuration runs in a worker process with its own environment
(environment variables such as the malloc settings act at process start),
started once. After a warm-up that also sizes each item's window, rounds
visit every item once, in an order that alternates direction each round, so
that compared items (kfactor and PyTorch) run side by side under the same
machine conditions. Ratios are taken per round, then summarised.

Writes `<out>/run-<cpu|gpu>[-quick].json` and `.md`, and prints the table.
"""

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

from benchmarks import machine
from benchmarks import protocol
from benchmarks import report

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_SCRIPT = os.path.join(
    REPO_ROOT, os.pardir, "shared", "benchmarks", "torch_kf_step.py"
)
TORCH_VENV_PYTHON = os.path.join(
    REPO_ROOT, os.pardir, "scratch", "torchvenv", "bin", "python"
)
WIDTHS = ("full", "narrow")
PARTS = ("steps", "malloc", "onednn_off", "xla", "eager", "assembly")
PARTS += ("export", "data")
MALLOC_TUNED = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
}
ONEDNN_OFF = {"TF_ENABLE_ONEDNN_OPTS": "0"}
#: Set in every worker unless the caller's environment sets them.
WORKER_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # several workers share a GPU
}


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


def timing_for(args):
    max_other = args.max_other if args.max_other > 0 else None
    if args.quick:
        window_s = dict.fromkeys(report.CATEGORIES, 0.25)
        budget = min(args.retry_budget_s, 20.0)
        return Timing(args.repeats or 2, 0.2, window_s, 1, max_other, budget)
    window_s = {
        "step": 2.5,
        "eager": 2.0,
        "inference": 1.2,
        "latency": 0.6,
        "matmul": 1.0,
        "data": 1.5,
    }
    return Timing(
        args.repeats or 7, 1.0, window_s, 3, max_other, args.retry_budget_s
    )


# === Workers ===


@dataclasses.dataclass
class WorkerSpec:
    """A worker process: what it runs, in which environment."""

    name: str
    framework: str  # "kfactor" or "pytorch"
    variant: str  # "default", "malloc" or "onednn-off"
    command: list
    env: dict
    items: list


def tf_worker(name, variant, env, items):
    command = [sys.executable, "-m", "benchmarks.worker_tf"]
    config = json.dumps({"items": items})
    return WorkerSpec(name, "kfactor", variant, [*command, config], env, items)


def torch_worker(name, variant, env, items, args):
    config = {
        "items": items,
        "script": args.torch_script,
        "threads": args.torch_threads,
        "batch_size": args.batch_size,
    }
    command = [args.torch_python, "-m", "benchmarks.worker_torch"]
    command.append(json.dumps(config))
    return WorkerSpec(name, "pytorch", variant, command, env, items)


def step_specs(widths, modes, batch_size, kinds=("factorize", "teacher")):
    return [
        {"kind": kind, "width": w, "mode": mode, "batch_size": batch_size}
        for w in widths
        for kind in kinds
        for mode in modes
    ]


def torch_specs(widths, kinds):
    return [{"kind": kind, "width": w} for w in widths for kind in kinds]


def worker_specs(args, use_torch):
    """The workers, in the order their items are interleaved."""
    parts, widths, batch = set(args.parts), args.widths, args.batch_size
    workers = []
    torch_kinds = []
    if "steps" in parts:
        for w in widths:
            specs = step_specs([w], ["function"], batch)
            workers.append(tf_worker(f"kfactor-{w}", "default", {}, specs))
        torch_kinds += ["factorize", "teacher"]
    if "assembly" in parts:
        torch_kinds += ["assembled", "standalone"]
    if use_torch and torch_kinds:
        specs = torch_specs(widths, torch_kinds)
        workers.append(torch_worker("pytorch", "default", {}, specs, args))
    if "malloc" in parts:
        specs = step_specs(widths, ["function"], batch)
        workers.append(
            tf_worker("kfactor-malloc", "malloc", MALLOC_TUNED, specs)
        )
        if use_torch:
            specs = torch_specs(widths, ["factorize", "teacher"])
            workers.append(
                torch_worker(
                    "pytorch-malloc", "malloc", MALLOC_TUNED, specs, args
                )
            )
    if "onednn_off" in parts and "full" in widths:
        specs = step_specs(["full"], ["function"], batch, ["factorize"])
        specs.append({"kind": "matmul"})
        name = "kfactor-full-onednn-off"
        workers.append(tf_worker(name, "onednn-off", ONEDNN_OFF, specs))
    modes = [m for m in ("xla", "eager") if m in parts]
    if modes:
        specs = step_specs(widths, modes, batch)
        workers.append(tf_worker("kfactor-modes", "default", {}, specs))
    specs = [{"kind": "matmul"}]
    if "data" in parts:
        specs.append({"kind": "data", "batch_size": batch})
    if "assembly" in parts:
        specs += [
            {"kind": "assembly", "width": w, "batch_size": batch}
            for w in widths
        ]
    if "export" in parts:
        specs += [{"kind": "export", "width": w} for w in widths]
    workers.append(tf_worker("kfactor-inference", "default", {}, specs))
    return workers


class WorkerError(RuntimeError):
    pass


class Worker:
    """A running worker process, spoken to over stdin/stdout JSON lines."""

    def __init__(self, spec, log_dir):
        self.spec = spec
        self.log_path = os.path.join(log_dir, f"{spec.name}.log")
        env = {**WORKER_DEFAULTS, **os.environ, **spec.env}
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                spec.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=REPO_ROOT,
                text=True,
            )
        self.info, self.items = None, None
        self.peak_rss_bytes = 0

    def _receive(self):
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise WorkerError(
                f"Worker {self.spec.name} exited with code "
                f"{self.process.returncode}. Its log, {self.log_path}, "
                f"ends with:\n{self.log_tail()}"
            )
        return json.loads(line)

    def log_tail(self, lines=30):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])

    def wait_ready(self):
        ready = self._receive()["ready"]
        self.info, self.items = ready["info"], ready["items"]

    def run(self, item, calls):
        """One timed window of `calls` calls of `item`."""
        request = json.dumps({"op": "run", "item": item, "calls": calls})
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        answer = self._receive()
        if "error" in answer:
            raise WorkerError(
                f"{self.spec.name}/{item} failed: {answer['error']}\n"
                f"{self.log_tail()}"
            )
        self.peak_rss_bytes = max(self.peak_rss_bytes, answer["maxrss_bytes"])
        return answer

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.process.stdin.close()
                self.process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def start_workers(specs, log_dir):
    """Starts every worker (they build concurrently) and waits for all."""
    workers = []
    try:
        for spec in specs:
            workers.append(Worker(spec, log_dir))
        for worker in workers:
            worker.wait_ready()
            print(f"ready: {worker.spec.name} ({len(worker.items)} items)")
    except BaseException:
        for worker in workers:
            worker.close()
        raise
    return workers


# === Measuring ===


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
            f" ({retries.count} contended windows measured again)"
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


# === Results ===


def entry_result(entry):
    spec = entry.worker.spec
    described = entry.worker.items[entry.item]
    return {
        "framework": spec.framework,
        "variant": spec.variant,
        "worker": spec.name,
        "item": entry.item,
        "group": report.group_of(entry.item),
        "category": entry.category,
        "unit": described["unit"],
        "units_per_call": described["units_per_call"],
        "meta": described["meta"],
        "first_call_seconds": entry.first_call_seconds,
        "calls_per_window": entry.calls,
        "windows": entry.windows,
    }


def worker_result(worker):
    spec = worker.spec
    return {
        "framework": spec.framework,
        "variant": spec.variant,
        "env": spec.env,
        "command": shlex.join(spec.command[:3]),
        "items": list(worker.items),
        "info": worker.info,
        "peak_rss_bytes": worker.peak_rss_bytes,
        "log": worker.log_path,
    }


def device_kind(workers):
    gpus = any(w.info.get("gpus") for w in workers)
    return "gpu" if gpus else "cpu"


def output_paths(args, device):
    suffix = "-quick" if args.quick else ""
    stem = os.path.join(args.out, f"run-{device}{suffix}")
    return stem + ".json", stem + ".md"


def torch_available(python):
    """Whether `python` exists and imports torch."""
    if not python or not os.path.exists(python):
        return False
    check = subprocess.run(
        [python, "-c", "import torch"],
        capture_output=True,
        check=False,
    )
    return check.returncode == 0


def default_torch_python():
    if os.path.exists(TORCH_VENV_PYTHON):
        return os.path.normpath(TORCH_VENV_PYTHON)
    return sys.executable


def comma_list(choices):
    def parse(text):
        values = [v for v in text.split(",") if v]
        unknown = sorted(set(values) - set(choices))
        if unknown or not values:
            raise argparse.ArgumentTypeError(
                f"expected a comma list of {', '.join(choices)}; "
                f"received {text!r}"
            )
        return values

    return parse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny windows, 2 rounds"
    )
    parser.add_argument(
        "--widths", type=comma_list(WIDTHS), default=list(WIDTHS)
    )
    parser.add_argument(
        "--parts",
        type=comma_list(PARTS),
        default=list(PARTS),
        help="what to measure besides the matmul (default: all)",
    )
    parser.add_argument(
        "--repeats", type=int, help="rounds (default 7, quick 2)"
    )
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument(
        "--torch",
        choices=("auto", "on", "off"),
        default="auto",
        help="run the PyTorch reference (auto: if its python imports torch)",
    )
    parser.add_argument("--torch_python", default=default_torch_python())
    parser.add_argument("--torch_script", default=REFERENCE_SCRIPT)
    parser.add_argument("--torch_threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--max_other",
        type=float,
        default=0.1,
        help="measure a window again when other processes used more than "
        "this share of all cores during it (0: never)",
    )
    parser.add_argument(
        "--retry_budget_s",
        type=float,
        default=180.0,
        help="seconds the run may spend on such retries (quick: <= 20)",
    )
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"))
    return parser.parse_args(argv)


def use_torch(args):
    if args.torch == "off":
        return False
    available = torch_available(args.torch_python) and os.path.exists(
        args.torch_script
    )
    if args.torch == "on" and not available:
        raise SystemExit(
            f"--torch=on, but {args.torch_python} cannot import torch or "
            f"{args.torch_script} is missing."
        )
    if not available:
        print(f"PyTorch reference skipped: no torch in {args.torch_python}.")
    return available


def main(argv=None):
    args = parse_args(argv)
    args.torch_script = os.path.normpath(args.torch_script)
    timing = timing_for(args)
    info = machine.machine_info()
    started = time.perf_counter()
    specs = worker_specs(args, use_torch(args))
    log_dir = tempfile.mkdtemp(prefix="kfactor-bench-logs-")
    print(f"{len(specs)} workers; logs in {log_dir}")
    workers = start_workers(specs, log_dir)
    try:
        entries, retried = measure(workers, timing)
    finally:
        for worker in workers:
            worker.close()
    info["load_average_end"] = machine.load_average()
    results = {
        "config": {**vars(args), "timing": dataclasses.asdict(timing)},
        "machine": info,
        "workers": {w.spec.name: worker_result(w) for w in workers},
        "entries": {e.key: entry_result(e) for e in entries},
        "retries": retried,
        "duration_seconds": time.perf_counter() - started,
    }
    results["derived"] = report.derive(results)
    table = report.markdown(results)
    json_path, table_path = output_paths(args, device_kind(workers))
    os.makedirs(args.out, exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    with open(table_path, "w") as f:
        f.write(table + "\n")
    print(table)
    print(f"Wrote {json_path} and {table_path}")
    return results


if __name__ == "__main__":
    main()
