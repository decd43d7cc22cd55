"""Worker processes of the benchmark, seen from the coordinator.

A worker (`worker_tf.py`, `worker_torch.py`) is started once with its own
environment, builds its items, and then answers one JSON request line with
one JSON answer line (`protocol.py`). Its stderr goes to a log file.
"""

import dataclasses
import json
import os
import subprocess

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Set in every worker unless the caller's environment sets them.
WORKER_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # several workers share a GPU
}
#: Removed from every worker's environment unless its spec sets them, so
#: that "default" means kfactor's and glibc's defaults whatever the caller
#: exported.
CONTROLLED = (
    "TF_ENABLE_ONEDNN_OPTS",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
)


@dataclasses.dataclass
class WorkerSpec:
    """A worker process: what it runs, in which environment."""

    name: str
    framework: str  # "kfactor" or "pytorch"
    variant: str  # "default", "malloc" or "onednn-off"
    command: list
    env: dict
    items: list


def worker_environment(spec_env):
    """The caller's environment, with the defaults and the spec's settings."""
    env = {**WORKER_DEFAULTS, **os.environ}
    for name in CONTROLLED:
        env.pop(name, None)
    env.update(spec_env)
    return env


class WorkerError(RuntimeError):
    pass


class Worker:
    """A running worker process, spoken to over stdin/stdout JSON lines."""

    def __init__(self, spec, log_dir):
        self.spec = spec
        self.log_path = os.path.join(log_dir, f"{spec.name}.log")
        env = worker_environment(spec.env)
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
