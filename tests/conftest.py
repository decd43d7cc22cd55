"""Shared pytest fixtures: TF backend, quiet logs, a fixed seed per test."""

import fcntl
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as configure_cpu()

from kfactor import cli  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402
from absl.testing import flagsaver  # noqa: E402


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


def run_tiny_demo(out):
    """A tiny `kfactor demo` run through the CLI, written to `out`."""
    flags.FLAGS(["kfactor"])  # parse defaults once
    with flagsaver.flagsaver(
        num_train=384,
        num_test=256,
        batch_size=64,
        train_teacher=True,
        train_baselines=True,
        teacher_epochs=2,
        teacher_num_train=384,
        teacher_batch_size=64,
        factor_epochs=1,
        single_task_epochs=1,
        kd_epochs=1,
        widths=["8", "8", "8", "8", "8", "8"],
        output_dir=str(out),
        verbose=0,
        eval_train_examples=384,
        eval_test_examples=256,
    ):
        cli.run(["kfactor", "demo"])


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The tiny demo run's output directory, made once per test session.

    Under pytest-xdist the workers share it: the first to take the lock
    runs the demo, the others wait and read it.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # this run's folder above the workers' own
    out = shared / "demo_run"
    with open(shared / "demo_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "report.json").is_file():
            run_tiny_demo(out)
    return out


@pytest.fixture
def eager():
    """Runs tf.functions eagerly: for tiny models, tracing costs more than
    the few steps it would speed up."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)
