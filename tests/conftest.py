"""Shared pytest fixtures: TF backend, quiet logs, a fixed seed per test."""

import os
import subprocess
import sys
import threading
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as configure_cpu()

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--run_large",
        action="store_true",
        default=False,
        help="also run tests marked `large` (slow end-to-end runs)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run_large"):
        return
    skip_large = pytest.mark.skip(reason="needs --run_large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip_large)


@pytest.fixture(autouse=True)
def fixed_seed():
    keras.utils.set_random_seed(0)
    yield


#: The tiny `kfactor demo` run that the `demo_run` tests read.
TINY_DEMO_FLAGS = (
    "--num_train=384",
    "--num_test=256",
    "--batch_size=64",
    "--train_teacher",
    "--train_baselines",
    "--teacher_epochs=2",
    "--teacher_num_train=384",
    "--teacher_batch_size=64",
    "--factor_epochs=1",
    "--single_task_epochs=1",
    "--kd_epochs=1",
    "--widths=8,8,8,8,8,8",
    "--verbose=0",
    "--eval_train_examples=384",
    "--eval_test_examples=256",
    "--project_codes",
)
#: How long a test waits for the background run (a slow CI machine).
TINY_DEMO_TIMEOUT_SECONDS = 1800


def tiny_demo_command(out):
    """`python -m kfactor.cli demo ...`: the tiny run, written to `out`."""
    return [
        sys.executable,
        "-m",
        "kfactor.cli",
        "demo",
        *TINY_DEMO_FLAGS,
        f"--output_dir={out}",
    ]


def shared_temp_dir(tmp_path_factory):
    """This test session's folder, the same for every xdist worker."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # this run's folder above the workers' own
    return shared


def reads_the_demo_run(session):
    items = session.items
    return any("demo_run" in getattr(i, "fixturenames", ()) for i in items)


@pytest.fixture(scope="session", autouse=True)
def tiny_demo_in_background(request, tmp_path_factory):
    """Starts the tiny demo run as soon as the session starts, when any
    collected test reads it.

    It runs in a subprocess beside the tests, so no worker sits idle
    while it trains (xdist's `loadgroup` cannot keep its readers on one
    worker under pytest 9.2: pytest-dev/pytest-xdist#1386). The first
    worker (or the only process) starts it; a thread writes its exit
    status to `demo_run.rc` for every worker to see (`demo_run`).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if worker != "gw0" or not reads_the_demo_run(request.session):
        yield
        return
    shared = shared_temp_dir(tmp_path_factory)
    with open(shared / "demo_run.log", "w") as log:
        process = subprocess.Popen(
            tiny_demo_command(shared / "demo_run"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def record_exit_status():
        (shared / "demo_run.rc").write_text(str(process.wait()))

    threading.Thread(target=record_exit_status, daemon=True).start()
    yield
    try:  # another worker may still be waiting for it
        process.wait(timeout=TINY_DEMO_TIMEOUT_SECONDS)
    finally:
        process.kill()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The tiny demo run's output directory (`tiny_demo_in_background`)."""
    shared = shared_temp_dir(tmp_path_factory)
    exit_status = shared / "demo_run.rc"
    deadline = time.monotonic() + TINY_DEMO_TIMEOUT_SECONDS
    while not exit_status.is_file():
        if time.monotonic() > deadline:
            pytest.fail(
                f"The tiny demo run did not finish in "
                f"{TINY_DEMO_TIMEOUT_SECONDS} s; its log: "
                f"{shared / 'demo_run.log'}"
            )
        time.sleep(1)
    if exit_status.read_text().strip() != "0":
        log = (shared / "demo_run.log").read_text()
        pytest.fail(f"The tiny demo run failed:\n{log[-4000:]}")
    return shared / "demo_run"


@pytest.fixture
def eager():
    """Runs tf.functions eagerly: for tiny models, tracing costs more than
    the few steps it would speed up."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)
