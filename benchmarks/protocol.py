"""The worker side of the benchmark protocol (standard library only).

A worker builds its `Item`s, then calls `serve(items, info, stream)`, which
runs each item once (tracing), writes one JSON line `{"ready": {...}}` and
answers each request line on stdin:

- `{"op": "run", "item": name, "calls": n}`: runs `item.run(n)` and answers
  `{"seconds", "cpu_seconds", "other_cpu", "minor_faults", "maxrss_bytes"}`;
- `{"op": "exit"}` or end of input: returns.

`other_cpu` is the share of all cores that *other* processes used during the
window (from /proc/stat; `null` where /proc is missing): windows measured on
a busy machine can be told apart. Only protocol lines go to stdout: anything
else a library prints (Python or C) is sent to stderr.

This module must not import TensorFlow or PyTorch: both workers use it.
"""

import dataclasses
import json
import os
import resource
import sys
import time
import traceback


@dataclasses.dataclass
class Item:
    """One measurable thing of a worker.

    Attributes:
        name: unique within the worker, e.g. `"factorize/full/function"`.
        run: `run(calls)` does `calls` calls and returns when they are done
            (synchronised with any accelerator).
        units_per_call: what one call processes (images, FLOPs, calls).
        unit: the name of that unit.
        meta: JSON-able facts about the item (FLOPs, parameters, ...).
        setup: called, untimed, before each window (or None).
        call_seconds: a list `run` appends each call's seconds to (or
            None); the window's answer then carries them, for latency
            percentiles.
    """

    name: str
    run: callable
    units_per_call: float
    unit: str = "images"
    meta: dict = dataclasses.field(default_factory=dict)
    setup: callable = None
    call_seconds: list = None


def cpu_jiffies():
    """`(busy jiffies of all CPUs, this process's utime + stime)` or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(t) for t in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    busy = sum(fields[:8]) - fields[3] - fields[4]  # minus idle, iowait
    return busy, int(own[11]) + int(own[12])


def other_cpu_share(start, end, seconds):
    """Share of all cores used by other processes between two `cpu_jiffies`."""
    if start is None or end is None or seconds <= 0:
        return None
    hz, cores = os.sysconf("SC_CLK_TCK"), os.cpu_count()
    others = (end[0] - start[0]) - (end[1] - start[1])
    return max(0.0, others / hz / (seconds * cores))


def maxrss_bytes():
    """Peak resident set size of this process so far (Linux: KiB -> B)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def timed_window(item, calls):
    """Runs `item` for `calls` calls and measures the window."""
    if item.setup is not None:
        item.setup()
    if item.call_seconds is not None:
        item.call_seconds.clear()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    jiffies = cpu_jiffies()
    cpu, wall = time.process_time(), time.perf_counter()
    item.run(calls)
    seconds = time.perf_counter() - wall
    cpu_seconds = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    answer = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "other_cpu": other_cpu_share(jiffies, cpu_jiffies(), seconds),
        "minor_faults": after.ru_minflt - usage.ru_minflt,
        "maxrss_bytes": maxrss_bytes(),
    }
    if item.call_seconds is not None:
        answer["call_seconds"] = list(item.call_seconds)
    return answer


def protocol_stdout():
    """Keeps the real stdout for protocol lines; fd 1 then goes to stderr."""
    sys.stdout.flush()
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def describe(items):
    """The `ready` description of items: units and metadata."""
    return {
        item.name: {
            "units_per_call": item.units_per_call,
            "unit": item.unit,
            "meta": item.meta,
        }
        for item in items
    }


def first_calls(items):
    """Runs each item once (tracing, compiling) and records how long.

    Workers do this before they report ready, all at once: tracing is
    mostly single-threaded, so overlapping it shortens the start-up.
    """
    for item in items:
        start = time.perf_counter()
        item.run(1)
        item.meta["first_call_seconds"] = time.perf_counter() - start


def serve(items, info, stream):
    """Runs each item once, then answers run requests on stdin until
    `exit` or end of input."""
    first_calls(items)
    by_name = {item.name: item for item in items}
    _send(stream, {"ready": {"info": info, "items": describe(items)}})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        try:
            answer = timed_window(by_name[request["item"]], request["calls"])
        except Exception as error:  # reported to the coordinator
            traceback.print_exc()
            answer = {"error": f"{type(error).__name__}: {error}"}
        _send(stream, answer)


def _send(stream, message):
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def parse_config(argv=None):
    """The worker's JSON config: its first command-line argument."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m benchmarks.worker_... CONFIG_JSON")
    return json.loads(argv[0])
