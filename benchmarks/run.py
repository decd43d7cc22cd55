"""kfactor's benchmark suite: one run, interleaved windows, JSON + table.

    python -m benchmarks.run            # everything: ~20 min on 2 CPU cores
    python -m benchmarks.run --quick    # smoke run: ~5 min (start-up and
                                        # tracing dominate)
    python -m benchmarks.run --quick --widths=narrow --parts=steps,data

Measures (see docs/PERFORMANCE.md):

1. training steps, images/s: the factorization step (`kfactor.Factorizer`,
   teacher + common + 5 task factors) and the teacher step, at each width,
   as `tf.function`, XLA and eager;
2. the PyTorch reference (`torch_reference.py`: eager, channels_last,
   torch.compile, both) interleaved with them, and the ratios kfactor /
   each PyTorch variant and / the best of them in each round, with glibc's
   default malloc and with
   `MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184`;
   the full-width step also with oneDNN off (`TF_ENABLE_ONEDNN_OPTS=0`);
3. achieved GFLOP/s by formula (`flops.py`) as a share of a 2048^2 fp32
   matmul measured in the same run;
4. assembled N-task inference vs N standalone factor networks (N = 1..5);
5. procedural data generation images/s and its ratio to the steps;
6. exported SavedModel latency at batch 1 and 32 vs the in-process model;
7. peak resident memory of every worker (the factorization step's too);
8. each convolution layer of the factorization step alone (`layers.py`):
   its GFLOP/s, and their sum as a ceiling of the step's;
9. only with `--parts=phases`: the factorization step in cumulative phases
   (teacher, forward, loss, gradients, step; `phases.py` and
   `torch_reference.factorization_phases`), what each phase adds, and
   kfactor / PyTorch per phase (`phase_report.py`);
10. only with `--parts=realistic`: the reference's CIFAR-size models
   (`realistic.py`, `torch_realistic.py`: WRN-28-2 teacher, ResNet-18
   common, three MobileNetV2 x0.5 tasks, multi-stage InfoMax), kfactor's
   step against each PyTorch variant and the best of each round;
11. only with `--parts=inference`: assembled inference of the demo's and
   the realistic factors against N standalone networks, the exported
   SavedModel and PyTorch (`inference.py`), at batch 1 (p50/p99 latency)
   and `--batch_size` (`realistic_report.py`).

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
import sys
import tempfile
import time

from benchmarks import machine
from benchmarks import report
from benchmarks.realistic_config import INFERENCE_VARIANTS
from benchmarks.realistic_config import STEP_VARIANTS
from benchmarks.schedule import Timing
from benchmarks.schedule import measure
from benchmarks.workers import WorkerSpec
from benchmarks.workers import start_workers
from benchmarks.workers import torch_available

TORCH_INSTALL = "pip install torch==2.13.0"
TORCH_VARIANTS = ("eager", "channels_last", "compile", "compile_channels_last")
WIDTHS = ("full", "narrow")
PARTS = ("steps", "malloc", "onednn_off", "xla", "eager", "assembly")
PARTS += (
    "export",
    "data",
    "layers",
    "phases",
    "serving",
    "realistic",
    "inference",
)
#: Parts a run measures only when `--parts` names them: the diagnostic
#: `phases`, the `serving` load (`kfactor serve` under 1, 4 and 16 clients;
#: it needs the `[serve]` extra and runs on its own, not interleaved), and
#: the long `realistic` and `inference` (issue 26).
OPT_IN_PARTS = ("phases", "serving", "realistic", "inference")
#: What a run measures unless `--parts` says.
DEFAULT_PARTS = tuple(p for p in PARTS if p not in OPT_IN_PARTS)
#: Requests per client count of the serving part (quick: `QUICK_REQUESTS`).
SERVING_REQUESTS = 800
QUICK_SERVING_REQUESTS = 100
REALISTIC_SIZES = ("full", "tiny")
REALISTIC_TORCH_VARIANTS = STEP_VARIANTS
INFERENCE_TORCH_VARIANTS = INFERENCE_VARIANTS
INFERENCE_WORKLOADS = ("demo", "realistic")
#: PyTorch variants of the `phases` part unless `--phase_torch_variants`
#: says: eager and channels_last, within a few % of the compile variants'
#: factorization step (results/run-cpu-steps-fused-bn.md) without their
#: minutes of compiling a phase.
PHASE_TORCH_VARIANTS = ("eager", "channels_last")
MALLOC_TUNED = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
}
ONEDNN_OFF = {"TF_ENABLE_ONEDNN_OPTS": "0"}
#: PyTorch's CPU kernels run on libgomp, whose threads spin while they wait:
#: on a machine other processes share, that made eager PyTorch 4.5x slower
#: (narrow factorization step, 2 threads, 44 vs 200 images/s). PASSIVE is
#: what a PyTorch user tunes there; it does not slow a quiet machine's
#: large kernels.
TORCH_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


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
        "layer": 1.0,
        "data": 1.5,
        "phase": 1.5,
        "realistic": 2.5,
    }
    return Timing(
        args.repeats or 7, 1.0, window_s, 3, max_other, args.retry_budget_s
    )


# === Workers ===


def tf_worker(name, variant, env, items):
    command = [sys.executable, "-m", "benchmarks.worker_tf"]
    config = json.dumps({"items": items})
    return WorkerSpec(name, "kfactor", variant, [*command, config], env, items)


def torch_worker(name, variant, env, items, args):
    config = {
        "items": items,
        "threads": args.torch_threads,
        "batch_size": args.batch_size,
    }
    command = [args.torch_python, "-m", "benchmarks.worker_torch"]
    command.append(json.dumps(config))
    env = {**TORCH_ENV, **env}
    return WorkerSpec(name, "pytorch", variant, command, env, items)


def step_specs(widths, modes, batch_size, kinds=("factorize", "teacher")):
    return [
        {"kind": kind, "width": w, "mode": mode, "batch_size": batch_size}
        for w in widths
        for kind in kinds
        for mode in modes
    ]


def torch_specs(widths, kinds, variants):
    """PyTorch items: steps in every variant, inference eager."""
    specs = []
    for w in widths:
        for kind in kinds:
            if kind in ("factorize", "teacher"):
                specs += [
                    {"kind": kind, "width": w, "variant": v} for v in variants
                ]
            else:
                specs.append({"kind": kind, "width": w})
    return specs


def phase_workers(args, use_torch):
    """The `phases` part's workers: kfactor's, and PyTorch's if used."""
    specs = [
        {"kind": "phase", "width": w, "batch_size": args.batch_size}
        for w in args.widths
    ]
    workers = [tf_worker("kfactor-phases", "default", {}, specs)]
    if use_torch:
        specs = [
            {"kind": "phase", "width": w, "variant": v}
            for w in args.widths
            for v in args.phase_torch_variants
        ]
        workers.append(
            torch_worker("pytorch-phases", "default", {}, specs, args)
        )
    return workers


def realistic_workers(args, use_torch):
    """The `realistic` part's workers: kfactor's, and PyTorch's if used."""
    size = args.realistic_size
    spec = {"kind": "realistic", "batch_size": args.batch_size, "size": size}
    workers = [tf_worker("kfactor-realistic", "default", {}, [spec])]
    if use_torch:
        specs = [
            {"kind": "realistic", "size": size, "variant": v}
            for v in args.realistic_torch_variants
        ]
        workers.append(
            torch_worker("pytorch-realistic", "default", {}, specs, args)
        )
    return workers


def inference_workers(args, use_torch):
    """The `inference` part's workers: batch 1 and `--batch_size`."""
    batches = sorted({1, args.batch_size})
    size = args.realistic_size
    specs = [
        {"kind": "infer", "workload": w, "batch_sizes": batches, "size": size}
        for w in INFERENCE_WORKLOADS
    ]
    workers = [tf_worker("kfactor-infer", "default", {}, specs)]
    if use_torch:
        variants = [*INFERENCE_TORCH_VARIANTS, "standalone"]
        specs = [{**spec, "variant": v} for spec in specs for v in variants]
        workers.append(
            torch_worker("pytorch-infer", "default", {}, specs, args)
        )
    return workers


def worker_specs(args, use_torch):
    """The workers, in the order their items are interleaved."""
    parts, widths, batch = set(args.parts), args.widths, args.batch_size
    workers = []
    if "phases" in parts:
        workers += phase_workers(args, use_torch)
    if "realistic" in parts:
        workers += realistic_workers(args, use_torch)
    if "inference" in parts:
        workers += inference_workers(args, use_torch)
    torch_kinds = []
    if "steps" in parts:
        for w in widths:
            specs = step_specs([w], ["function"], batch)
            workers.append(tf_worker(f"kfactor-{w}", "default", {}, specs))
        torch_kinds += ["factorize", "teacher"]
    if "assembly" in parts:
        torch_kinds += ["assembled", "standalone"]
    if use_torch and torch_kinds:
        specs = torch_specs(widths, torch_kinds, args.torch_variants)
        workers.append(torch_worker("pytorch", "default", {}, specs, args))
    if "malloc" in parts:
        specs = step_specs(widths, ["function"], batch)
        workers.append(
            tf_worker("kfactor-malloc", "malloc", MALLOC_TUNED, specs)
        )
        if use_torch:
            kinds = ["factorize", "teacher"]
            specs = torch_specs(widths, kinds, args.torch_variants)
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
    if "layers" in parts:
        specs += [
            {"kind": "layer", "width": w, "batch_size": batch} for w in widths
        ]
    if "assembly" in parts:
        specs += [
            {"kind": "assembly", "width": w, "batch_size": batch}
            for w in widths
        ]
    if "export" in parts:
        specs += [{"kind": "export", "width": w} for w in widths]
    workers.append(tf_worker("kfactor-inference", "default", {}, specs))
    return workers


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
        "command": shlex.join(["python", *spec.command[1:3]]),
        "items": list(worker.items),
        "info": worker.info,
        "peak_rss_bytes": worker.peak_rss_bytes,
        "log": os.path.basename(worker.log_path),
    }


def device_kind(workers):
    gpus = any(w.info.get("gpus") for w in workers)
    return "gpu" if gpus else "cpu"


def output_paths(args, device):
    suffix = "-quick" if args.quick else ""
    stem = os.path.join(args.out, f"run-{device}{suffix}")
    return stem + ".json", stem + ".md"


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
        "--widths",
        type=comma_list(WIDTHS),
        default=list(WIDTHS),
        help=f"comma list of {', '.join(WIDTHS)} (default: both)",
    )
    parser.add_argument(
        "--parts",
        type=comma_list(PARTS),
        default=list(DEFAULT_PARTS),
        help=f"comma list of {', '.join(PARTS)}: what to measure besides "
        f"the matmul (default: all but {', '.join(OPT_IN_PARTS)})",
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
    parser.add_argument(
        "--torch_python",
        default=sys.executable,
        help="the python that runs the PyTorch worker (default: this one)",
    )
    parser.add_argument(
        "--torch_variants",
        type=comma_list(TORCH_VARIANTS),
        default=list(TORCH_VARIANTS),
        help=f"comma list of {', '.join(TORCH_VARIANTS)} (default: all; "
        "each compile variant compiles for a minute or more on 2 cores)",
    )
    parser.add_argument(
        "--phase_torch_variants",
        type=comma_list(TORCH_VARIANTS),
        default=list(PHASE_TORCH_VARIANTS),
        help="comma list of the PyTorch variants of the phases part "
        f"(default: {','.join(PHASE_TORCH_VARIANTS)})",
    )
    parser.add_argument(
        "--realistic_torch_variants",
        type=comma_list(REALISTIC_TORCH_VARIANTS),
        default=list(REALISTIC_TORCH_VARIANTS),
        help="comma list of the PyTorch variants of the realistic part "
        f"(default: all of {', '.join(REALISTIC_TORCH_VARIANTS)})",
    )
    parser.add_argument(
        "--realistic_size",
        choices=REALISTIC_SIZES,
        default="full",
        help="the realistic part's models: the reference's (full) or tiny "
        "ones (a smoke run)",
    )
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
    available = torch_available(args.torch_python)
    advice = (
        f"{args.torch_python} cannot import torch. Install it with "
        f"`{TORCH_INSTALL}` (a CPU build; only the benchmark needs it) or "
        "pass --torch_python."
    )
    if args.torch == "on" and not available:
        raise SystemExit(f"--torch=on, but {advice}")
    if not available:
        print(f"PyTorch reference skipped: {advice}")
    return available


def portable_config(args, timing):
    """The run's arguments as saved: no absolute paths of this machine."""
    config = {**vars(args), "timing": dataclasses.asdict(timing)}
    config["torch_python"] = os.path.basename(args.torch_python)
    config["out"] = os.path.relpath(args.out)
    return config


def run_serving(args):
    """The `serving` part: `kfactor serve` under load; JSON + table."""
    from benchmarks import serving  # TF in this process: only for this part

    info = machine.machine_info()
    requests = QUICK_SERVING_REQUESTS if args.quick else SERVING_REQUESTS
    results = serving.serving_load(requests_per_level=requests)
    info["load_average_end"] = machine.load_average()
    table = serving.load_markdown(results, info)
    stem = os.path.join(
        args.out, "serving-cpu" + ("-quick" if args.quick else "")
    )
    os.makedirs(args.out, exist_ok=True)
    with open(stem + ".json", "w") as f:
        json.dump({"machine": info, "results": results}, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(table + "\n")
    print(table)
    print(f"Wrote {stem}.json and {stem}.md")
    return results


def main(argv=None):
    args = parse_args(argv)
    if "serving" in args.parts:
        served = run_serving(args)
        args.parts = [p for p in args.parts if p != "serving"]
        if not args.parts:
            return served
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
        "config": portable_config(args, timing),
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
