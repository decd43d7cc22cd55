"""docs/RESULTS.md is generated (kfactor.lab.demo.results) and current."""

import json
import os
import re
import shutil

from kfactor.lab.demo import networks
from kfactor.lab.demo import results
from kfactor.lab.demo.config import DemoConfig

import pytest

from tests import fixtures

DOCS = os.path.join(fixtures.REPO_ROOT, "docs")


def load(name):
    with open(os.path.join(DOCS, name)) as f:
        return json.load(f)


def test_results_md_is_what_its_json_renders():
    seeds = load("results_seeds.json")
    comparison = load("objective_comparison.json")
    expected = results.render_results(
        seeds["reports"], comparison["runs"], seeds["meta"]
    )
    with open(os.path.join(DOCS, "RESULTS.md")) as f:
        assert f.read() == expected, (
            "docs/RESULTS.md is stale: run "
            "`python examples/three_seeds.py --render_only`"
        )


def test_results_rest_on_runs_from_scratch():
    for report in load("results_seeds.json")["reports"]:
        assert report["config"]["common_from_teacher"] is False
    for run in load("objective_comparison.json")["runs"]:
        assert run["config"]["common_from_teacher"] is False


def test_cell_is_mean_and_std():
    assert results.cell([1.0, 3.0]) == "2.000 ± 1.000"
    assert results.cell([None]) == "-"


def test_kd_student_has_the_factor_networks_total_size():
    config = DemoConfig()
    teacher = networks.build_teacher(config)
    factorizer = networks.build_factorizer(teacher, config)
    total = factorizer.common.count_params() + sum(
        f.count_params() for f in factorizer.task_factors.values()
    )
    student = networks.build_teacher(
        config,
        name="kd",
        width_multiplier=networks.KD_STUDENT_WIDTH_MULTIPLIER,
    )
    assert student.count_params() == pytest.approx(total, rel=0.05)


def test_cpu_name_gives_the_model_and_core_count():
    model, cores = results.cpu_name().split(", ")[:2]
    assert model and cores.endswith(" cores")
    if shutil.which("lscpu"):
        assert re.search(r"\(family \d+ model \d+\)$", model), model
