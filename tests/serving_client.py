"""A `kfactor serve` subprocess and a stdlib HTTP client for the tests."""

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 240
REQUEST_TIMEOUT_S = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, body=None, content_type="application/json", timeout=None):
    """`(HTTP status, parsed JSON answer)`; raises OSError if none came."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(
        url, data=data, method="POST" if data else "GET"
    )
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(
            req, timeout=timeout or REQUEST_TIMEOUT_S
        ) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


class Server:
    """`kfactor serve EXPORT_DIR` on a free port, in a subprocess."""

    def __init__(self, export_dir, log_path, *flags, model_name="kfactor"):
        self.port = free_port()
        self.model_name = model_name
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
        command = [
            sys.executable,
            "-m",
            "kfactor.cli",
            "serve",
            str(export_dir),
            f"--port={self.port}",
            f"--model_name={model_name}",
            *flags,
        ]
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=env
        )

    @property
    def predict_url(self):
        return f"{self.url}/v1/models/{self.model_name}:predict"

    @property
    def status_url(self):
        return f"{self.url}/v1/models/{self.model_name}"

    def log_tail(self, chars=3000):
        self.log.flush()
        return pathlib.Path(self.log_path).read_text()[-chars:]

    def poll_status(self, timeout=2):
        """The status answer, or the OSError's type name if none came."""
        try:
            return request(self.status_url, timeout=timeout)
        except OSError as err:
            return type(err).__name__, None

    def wait_available(self, on_answer=None):
        """Polls the status until AVAILABLE; `on_answer(answer, seconds)`."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"kfactor serve exited ({self.process.returncode}):\n"
                    f"{self.log_tail()}"
                )
            started = time.monotonic()
            answer = self.poll_status()
            if on_answer:
                on_answer(answer, time.monotonic() - started)
            code, body = answer
            if code == 200 and "AVAILABLE" in json.dumps(body):
                return
            time.sleep(0.05)
        raise TimeoutError(f"kfactor serve not ready:\n{self.log_tail()}")

    def stop(self, timeout=60):
        """SIGTERM, then the exit status (killed if it overstays)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.log.close()


@contextlib.contextmanager
def running(export_dir, log_path, *flags):
    server = Server(export_dir, log_path, *flags)
    try:
        server.wait_available()
        yield server
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.stop()
