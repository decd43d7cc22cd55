"""Times the op-allowlist check on the shipped factors (issue 25).

Run: `python examples/measure_graph_check.py` from the repository root.
"""

import os
import time

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.factors import graph_check
from kfactor.factors import plugins

SOURCES = (
    "saved_factors/dsprites",
    "plugins/kfactor-dsprites-factors/kfactor_dsprites_factors/factors",
)


def main(repeats=20):
    for source in SOURCES:
        directories = plugins.factor_directories(source)
        start = time.perf_counter()
        for _ in range(repeats):
            for directory in directories:
                graph_check.check_factor_graph(directory)
        seconds = (time.perf_counter() - start) / repeats
        size = sum(
            os.path.getsize(os.path.join(d, "saved_model", "saved_model.pb"))
            for d in directories
        )
        print(
            f"{source}: {len(directories)} factors, {size / 1e3:.0f} kB of "
            f"graph, {1e3 * seconds:.1f} ms per load_factors "
            f"({1e3 * seconds / len(directories):.2f} ms a factor)"
        )


if __name__ == "__main__":
    main()
