"""Independent classifier fits, run side by side with one BLAS thread each.

The measures fit many small classifiers that do not depend on each other:
a probe per (code block, factor), a linear SVM per (code dimension, factor).
Left alone, numpy's OpenBLAS runs every small matrix product of a fit on
all cores, and on matrices of 10,000 x 32 its threads mostly wait for each
other. `map_fits` instead limits BLAS to one thread and runs as many fits
at once as there are cores: scikit-learn's solvers release the GIL in
their compiled loops, so the threads overlap.

Measured on a 2-core AMD EPYC (Zen 3, AVX2) with 10,000 x 32 codes and a
32-valued factor: 4 whitened logistic probes in 3.9 s with OpenBLAS's 2
threads (7.8 s of CPU), 1.4 s with one thread; 8 probes in 1.7 s on
two threads with one BLAS thread each. A fit's result does not depend on
how many run at once.
"""

import concurrent.futures
import os
import threading

import threadpoolctl

#: Set in the threads `map_fits` starts: a nested call runs in place.
_worker = threading.local()


def available_cpus():
    """The CPU cores this process may run on (at least 1)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _start_worker():
    """Marks a worker thread and keeps OpenMP (kNN's distance search) to
    one thread in it: the pool already runs one fit per core."""
    _worker.active = True
    threadpoolctl.threadpool_limits(limits=1, user_api="openmp")


def map_fits(fit, jobs, max_workers=None):
    """`[fit(*job) for job in jobs]`, the fits run side by side.

    BLAS is held to one thread while the fits run (and restored after),
    however many run at once, so a fit gives the same numbers on any
    machine; up to `max_workers` (default: the available cores) threads
    run the fits. Called from inside a fit, it runs the jobs one after
    another, so nested measures never start more threads than cores.

    Args:
        fit: a callable whose calls do not depend on each other.
        jobs: an iterable of argument tuples.
        max_workers: the most fits at once (None: `available_cpus()`).

    Returns:
        The list of results, in the order of `jobs`. The first exception a
        fit raises is raised here.
    """
    jobs = [tuple(job) for job in jobs]
    if getattr(_worker, "active", False):
        return [fit(*job) for job in jobs]
    workers = max(1, min(len(jobs), max_workers or available_cpus()))
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        if workers == 1:
            return [fit(*job) for job in jobs]
        with concurrent.futures.ThreadPoolExecutor(
            workers, initializer=_start_worker
        ) as pool:
            return list(pool.map(lambda job: fit(*job), jobs))


__all__ = ["available_cpus", "map_fits"]
