"""tf.distribute: a mirrored step equals the single-device step."""

import json
import math
import os
import pathlib
import subprocess
import sys

from kfactor.training import distribute

import pytest
import tensorflow as tf

from tests import fixtures

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_cpu_results():
    """Runs `tests/distribute_check.py` in a fresh process (2 CPU devices)."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.distribute_check", "dv"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["dv"]


def test_mirrored_step_equals_the_single_device_step(two_cpu_results):
    results = two_cpu_results
    assert results["replicas"] == 2
    # The loss of the first train step (before the update) and every term.
    for name in ("mirrored", "mirrored_loop"):
        step = results[f"{name}_step"]
        for key, value in results["single_step"].items():
            assert step[key] == pytest.approx(value, abs=1e-6), (name, key)
        # One SGD(0.1) step moves weights by up to ~0.1: they agree to 1e-4.
        assert results[f"{name}_max_weight_difference"] < 1e-4
    # The loop (the multi-worker path) also validates, with test_step.
    loop = results["mirrored_loop_step"]
    for key in results["single_step"]:
        assert math.isfinite(loop[f"val_{key}"]), key
    assert results["max_weight_change"] > 1e-2


def test_workers_and_chief_of_a_local_strategy():
    strategy = tf.distribute.get_strategy()
    assert distribute.num_workers(strategy) == 1
    assert distribute.is_chief(strategy)


def test_distributed_fit_input_errors():
    model = fixtures.tiny_teacher()
    with pytest.raises(ValueError, match="compiled"):
        distribute.distributed_fit(model, fixtures.blob_dataset(8))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="custom_loop"):
        distribute.distributed_fit(
            model, fixtures.blob_dataset(8), custom_loop="yes"
        )


def test_custom_loop_raises_the_factorizers_check_errors():
    factorizer = fixtures.tiny_factorizer()
    factorizer.compile()
    images, labels = fixtures.blob_images(16)
    labels = {t: v.copy() for t, v in labels.items()}
    labels["row"][0] = 99
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    with pytest.raises(ValueError, match=r"task 'row' in \[0, 4\)"):
        distribute.distributed_fit(factorizer, data, custom_loop=True)
