"""Ships the factors of a `kfactor demo` run in `saved_factors/` and the plugin.

`saved_factors/dsprites/` (common + 5 tasks) and the plugin package's subset
(common, shape, scale) are the factors the default demo trains: procedural
dSprites -> narrow multi-task teacher -> factorization. This script copies
them from a finished demo run (`--from_run`), or runs the default demo
first (about 15 minutes on 2 CPU cores), checks that the copies load and
assemble to the run's exported logits, and writes `saved_factors/
dsprites/RESULTS.json` with the run's accuracies.

    kfactor demo --output_dir=kfactor_runs/demo
    python examples/make_shipped_factors.py --from_run=kfactor_runs/demo \\
        --overwrite

Then `kfactor list`, `kfactor assemble` and `kfactor export` work on a fresh
clone with nothing trained.
"""

import argparse
import json
import os
import shutil

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.factors import saving as artifacts
from kfactor.factors.assembly import check_assembly
from kfactor.lab import demo

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PLUGIN_FACTORS = os.path.join(
    ROOT,
    "plugins",
    "kfactor-dsprites-factors",
    "kfactor_dsprites_factors",
    "factors",
)
PLUGIN_SUBSET = ("common", "shape", "scale")
RESULTS_FILE = "RESULTS.json"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--from_run",
        help="a finished `kfactor demo` output directory (default: run the "
        "default demo into kfactor_runs/shipped first)",
    )
    parser.add_argument(
        "--out", default=os.path.join(ROOT, "saved_factors", "dsprites")
    )
    parser.add_argument("--plugin_out", default=PLUGIN_FACTORS)
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args()


def demo_report(run_dir):
    """The report of a finished demo run, or of a fresh default run."""
    if run_dir is None:
        run_dir = os.path.join("kfactor_runs", "shipped")
        return demo.run_demo(demo.DemoConfig(output_dir=run_dir))
    path = os.path.join(run_dir, demo.REPORT_FILE)
    if not os.path.exists(path):
        raise SystemExit(
            f"Expected a finished `kfactor demo` run in {run_dir!r}, but "
            f"{path} does not exist. Fix: run `kfactor demo "
            f"--output_dir={run_dir}` first, or omit --from_run."
        )
    with open(path) as f:
        return json.load(f)


def copy_factors(source, destination, names, overwrite):
    with artifacts.atomic_directory(destination, overwrite) as tmp:
        for name in names:
            shutil.copytree(os.path.join(source, name), f"{tmp}/{name}")


def check_copies(directory):
    """Largest |assembled - standalone| logit difference of the copies."""
    factors = kfactor.load_factors(directory, discover=False)
    model = kfactor.assemble(factors)
    return max(check_assembly(model, factors).values())


def main():
    args = parse_args()
    report = demo_report(args.from_run)
    source = report["factors_dir"]
    names = sorted(os.listdir(source))
    copy_factors(source, args.out, names, args.overwrite)
    copy_factors(source, args.plugin_out, PLUGIN_SUBSET, args.overwrite)
    summary = {
        "tasks": report["tasks"],
        "demo_config": report["config"],
        "num_train_images": report["num_train_images"],
        "num_test_images": report["num_test_images"],
    }
    with open(os.path.join(args.out, RESULTS_FILE), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    differences = {
        "saved_factors": check_copies(args.out),
        "plugin": check_copies(args.plugin_out),
    }
    print(json.dumps({**summary["tasks"], **differences}, indent=2))


if __name__ == "__main__":
    main()
