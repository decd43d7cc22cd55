"""Latency of the exported SavedModel vs the in-process Keras model.

The 5-task model assembled from loaded factors is exported with
`kfactor.export_for_serving`, loaded back with `tf.saved_model.load`, and
its `serving_default` signature is called (logits and probabilities of
every task). In process, the same Keras model is called three ways:
`tf.function` (what serving runs), `predict_on_batch`, and eagerly
(`model(images)`). Every call is synchronous (its outputs are fetched as
NumPy, as a client would), so the rate is calls/s and 1/rate the latency.

`serving_load` (`python -m benchmarks.run --parts=serving`) runs the export
under `kfactor serve` (needs the `[serve]` extra) and sends it predict
requests from 1, 4 and 16 concurrent clients (threads, one keep-alive
connection each): throughput, p50 / p99 latency, errors out of all requests
and the server's peak RSS, against sequential in-process `model(x)` on the
same batch.
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import kfactor

import numpy as np
import tensorflow as tf

from benchmarks import models
from benchmarks.protocol import Item

BATCH_SIZES = (1, 32)


def _fetch(outputs):
    tf.nest.map_structure(np.asarray, outputs)


def call_loop(fn, images):
    """`run(calls)`: `calls` synchronous calls `fn(images)`."""

    def run(calls):
        for _ in range(calls):
            _fetch(fn(images))

    return run


def exported_signature(model):
    """`serving_default` of `model` exported and loaded back."""
    directory = tempfile.mkdtemp(prefix="kfactor-bench-export-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = os.path.join(directory, "1")
    summary = kfactor.export_for_serving(model, path)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]

    def call(images, _loaded=loaded):  # holds the loaded variables
        return signature(images=images)

    return call, summary


def export_items(width, batch_sizes=BATCH_SIZES):
    """`export/{width}/{variant}/{batch}` items, variant per call path."""
    _, factors = models.factorizer_and_factors(width)
    model = kfactor.assemble(factors)
    savedmodel, summary = exported_signature(model)
    compiled = tf.function(lambda x: model(x, training=False))
    variants = {
        "savedmodel": savedmodel,
        "keras_function": compiled,
        "keras_predict_on_batch": model.predict_on_batch,
        "keras_call": lambda x: model(x, training=False),
    }
    meta = {
        "tasks": list(model.output),
        "export_size_bytes": summary["size_bytes"],
        "parameters": summary["num_parameters"],
    }
    items = []
    for batch_size in batch_sizes:
        images = models.random_images(batch_size)
        for variant, fn in variants.items():
            name = f"export/{width}/{variant}/{batch_size}"
            run = call_loop(fn, images)
            item_meta = {**meta, "batch_size": batch_size}
            items.append(Item(name, run, 1, unit="calls", meta=item_meta))
    return items


# === Load: `kfactor serve` under concurrent clients ===

#: Concurrent clients of the load part (`--parts=serving`).
CLIENTS = (1, 4, 16)
LOAD_BATCH_SIZE = 1
START_TIMEOUT_S = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(export_dir, port, log_path):
    """`kfactor serve export_dir` in a subprocess, once it is AVAILABLE."""
    command = [sys.executable, "-m", "kfactor.cli", "serve", export_dir]
    command += [f"--port={port}", "--model_name=kfactor"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    log = open(log_path, "w")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kfactor serve exited: see {log_path}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, 2)
            connection.request("GET", "/v1/models/kfactor")
            if b"AVAILABLE" in connection.getresponse().read():
                return process, log
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise TimeoutError(f"kfactor serve not ready: see {log_path}")


def peak_rss_bytes(pid):
    """VmHWM of a running process (Linux), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _client(port, body, count, latencies, errors):
    """`count` predict requests over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    for _ in range(count):
        started = time.perf_counter()
        try:
            connection.request(
                "POST", "/v1/models/kfactor:predict", body, headers
            )
            response = connection.getresponse()
            answer = response.read()
            ok = response.status == 200 and answer.startswith(b'{"predict')
        except OSError as err:
            ok = False
            answer = repr(err).encode()
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, 60)
        latencies.append(time.perf_counter() - started)
        if not ok:
            errors.append(answer[:200].decode(errors="replace"))
    connection.close()


def load_level(port, body, clients, requests_per_client):
    """Throughput and latency of `clients` concurrent clients."""
    latencies, errors = [], []
    threads = [
        threading.Thread(
            target=_client,
            args=(port, body, requests_per_client, latencies, errors),
        )
        for _ in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return summarize(latencies, seconds) | {
        "clients": clients,
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def summarize(latencies, seconds):
    latencies = np.asarray(latencies)
    return {
        "requests": int(latencies.size),
        "seconds": seconds,
        "requests_per_second": latencies.size / seconds,
        "p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3),
    }


def in_process_level(fn, images, calls):
    """Sequential `fn(images)` calls, their outputs fetched as NumPy."""
    for _ in range(10):  # warm-up
        _fetch(fn(images))
    latencies = []
    started = time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter()
        _fetch(fn(images))
        latencies.append(time.perf_counter() - t)
    return summarize(latencies, time.perf_counter() - started)


def serving_load(width="full", requests_per_level=800, clients=CLIENTS):
    """The `--parts=serving` results: server levels and in-process calls."""
    _, factors = models.factorizer_and_factors(width)
    model = kfactor.assemble(factors)
    directory = tempfile.mkdtemp(prefix="kfactor-bench-serve-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    summary = kfactor.export_for_serving(model, os.path.join(directory, "1"))
    images = models.random_images(LOAD_BATCH_SIZE)
    body = json.dumps({"instances": np.asarray(images).tolist()}).encode()
    port = free_port()
    log_path = os.path.join(directory, "server.log")
    process, log = start_server(directory, port, log_path)
    try:
        load_level(port, body, 1, 20)  # warm-up
        levels = [
            load_level(port, body, n, max(1, requests_per_level // n))
            for n in clients
        ]
        server_rss = peak_rss_bytes(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    signature, _ = exported_signature(model)
    in_process = {
        "model(x)": in_process_level(
            lambda x: model(x, training=False), images, requests_per_level
        ),
        "loaded serving_default": in_process_level(
            signature, images, requests_per_level
        ),
    }
    return {
        "width": width,
        "batch_size": LOAD_BATCH_SIZE,
        "tasks": summary["tasks"],
        "request_bytes": len(body),
        "levels": levels,
        "in_process": in_process,
        "server_peak_rss_bytes": server_rss,
    }


def load_markdown(results, machine):
    """The `--parts=serving` table, with the CPU and its load."""
    batch = results["batch_size"]
    lines = [
        f"kfactor serve (KServe ModelServer, TF Serving REST), "
        f"{len(results['tasks'])}-task {results['width']}-width export, "
        f"batch {batch} per request ({results['request_bytes']} bytes of "
        "JSON), clients on the same machine.",
        f"CPU: {machine['cpu_model']} ({machine['usable_cores']} usable "
        f"cores; flags {', '.join(machine['cpu_flags'])}); load average "
        f"{machine['load_average_start']} at start, "
        f"{machine.get('load_average_end')} at end.",
        "",
        "| clients | requests | errors | requests/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for level in results["levels"]:
        lines.append(
            f"| {level['clients']} | {level['requests']} | "
            f"{level['errors']} | {level['requests_per_second']:.1f} | "
            f"{level['p50_ms']:.2f} | {level['p99_ms']:.2f} |"
        )
    for name, local in results["in_process"].items():
        lines.append(
            f"| in-process `{name}` | {local['requests']} | 0 | "
            f"{local['requests_per_second']:.1f} | {local['p50_ms']:.2f} | "
            f"{local['p99_ms']:.2f} |"
        )
    total = sum(level["requests"] for level in results["levels"])
    errors = sum(level["errors"] for level in results["levels"])
    rss = results["server_peak_rss_bytes"]
    lines += [
        "",
        f"Errors: {errors} of {total} requests. Server peak RSS: "
        f"{rss / 2**20:.0f} MiB."
        if rss
        else "",
    ]
    return "\n".join(lines)
