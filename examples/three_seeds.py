"""Runs the default demo at three training seeds and writes docs/RESULTS.md.

    python examples/three_seeds.py --seeds=0,1,2

Each seed is one `kfactor demo` with default flags but `--training_seed`
(initialization, training order and noise; the splits and the shipped
teacher stay the demo's): teacher, factor networks, KD student and
single-task networks, all trained from scratch for the same steps. About
15 minutes a seed on 2 Intel AVX-512 cores. The reports go to
`docs/results_seeds.json`; docs/RESULTS.md is rendered from it and from
`docs/objective_comparison.json` (`examples/objective_comparison.py`).
`--render_only` re-renders without training.
"""

import json
import os

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.lab.demo import results
from kfactor.lab.demo.config import DemoConfig
from kfactor.lab.demo.results import render_results
from kfactor.lab.demo.run import run_demo

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds.")
flags.DEFINE_string("runs_dir", "kfactor_runs/seeds", "Demo outputs.")
flags.DEFINE_string("docs_dir", "docs", "Where RESULTS.md and JSON go.")
flags.DEFINE_bool("render_only", False, "Re-render docs/RESULTS.md only.")

SEEDS_FILE = "results_seeds.json"
COMPARISON_FILE = "objective_comparison.json"
RESULTS_FILE = "RESULTS.md"


def render(docs_dir):
    with open(os.path.join(docs_dir, SEEDS_FILE)) as f:
        seeds = json.load(f)
    with open(os.path.join(docs_dir, COMPARISON_FILE)) as f:
        comparison = json.load(f)
    text = render_results(seeds["reports"], comparison["runs"], seeds["meta"])
    with open(os.path.join(docs_dir, RESULTS_FILE), "w") as f:
        f.write(text)
    return text


def main(argv):
    del argv
    if not FLAGS.render_only:
        reports = []
        for seed in map(int, FLAGS.seeds):
            config = DemoConfig(
                training_seed=seed,
                train_baselines=True,  # each seed's own, as its factors
                verbose=0,
                output_dir=os.path.join(FLAGS.runs_dir, f"seed{seed}"),
            )
            reports.append(run_demo(config))
        minutes = [r["wall_seconds"] / 60 for r in reports]
        meta = {
            "command": "python examples/three_seeds.py --seeds="
            + ",".join(FLAGS.seeds),
            "comparison_command": "python examples/objective_comparison.py "
            "--variants=... --factor_epochs=5",
            "machine": results.cpu_name(),
            "minutes": "demo wall time per seed "
            + ", ".join(f"{m:.1f}" for m in minutes)
            + " min",
        }
        with open(os.path.join(FLAGS.docs_dir, SEEDS_FILE), "w") as f:
            json.dump(
                {"meta": meta, "reports": reports}, f, indent=1, sort_keys=True
            )
    render(FLAGS.docs_dir)


if __name__ == "__main__":
    app.run(main)
