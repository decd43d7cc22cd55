"""Tests for `map_fits`: independent fits side by side, BLAS on one thread."""

import threading

from kfactor.lab import disentanglement as metrics
from kfactor.lab.disentanglement import _parallel

import numpy as np
import pytest
import threadpoolctl


def _blas_threads():
    """The thread counts of the BLAS libraries numpy loaded."""
    return [
        pool["num_threads"]
        for pool in threadpoolctl.threadpool_info()
        if pool["user_api"] == "blas"
    ]


def test_results_come_back_in_the_order_of_the_jobs():
    jobs = [(k, 10 * k) for k in range(7)]

    assert _parallel.map_fits(lambda a, b: a + b, jobs, max_workers=3) == [
        11 * k for k in range(7)
    ]


def test_two_fits_run_at_the_same_time():
    # Each job waits for the other: run one after another, they would time
    # out at the barrier.
    barrier = threading.Barrier(2, timeout=30)

    def meet(name):
        barrier.wait()
        return name

    assert _parallel.map_fits(meet, [("a",), ("b",)], max_workers=2) == [
        "a",
        "b",
    ]


def test_blas_runs_one_thread_during_the_fits_and_is_restored_after():
    if not _blas_threads():
        pytest.skip("numpy loaded no BLAS library that threadpoolctl sees")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        during = _parallel.map_fits(_blas_threads, [(), ()], max_workers=2)
        after = _blas_threads()

    assert during == [[1] * len(before)] * 2
    assert after == before


def test_a_nested_call_runs_in_its_callers_thread():
    def inner():
        return threading.get_ident()

    def outer():
        return threading.get_ident(), _parallel.map_fits(
            inner, [(), ()], max_workers=2
        )

    for caller, nested in _parallel.map_fits(outer, [(), ()], max_workers=2):
        assert nested == [caller, caller]


def test_a_fits_exception_reaches_the_caller():
    def fit(value):
        if value == 2:
            raise ValueError("bad value 2")
        return value

    with pytest.raises(ValueError, match="bad value 2"):
        _parallel.map_fits(fit, [(1,), (2,), (3,)], max_workers=2)


def test_the_leakage_matrix_is_the_same_on_one_thread_and_on_two(
    monkeypatch,
):
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 4, size=(900, 2))
    blocks = {
        name: factors[:, k : k + 1] + 0.5 * rng.normal(size=(900, 3))
        for k, name in enumerate(["a", "b"])
    }
    split = (
        {n: v[:600] for n, v in blocks.items()},
        factors[:600],
        {n: v[600:] for n, v in blocks.items()},
        factors[600:],
        ["a", "b"],
    )
    two = metrics.leakage_matrix(*split)
    monkeypatch.setattr(_parallel, "available_cpus", lambda: 1)
    one = metrics.leakage_matrix(*split)

    np.testing.assert_array_equal(two.matrix, one.matrix)
    assert two.matrix[0, 0] > 0.5 and two.matrix[1, 1] > 0.5
