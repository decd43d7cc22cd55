"""The benchmark's coordinator without timing: torch optional, paths."""

import os

import keras
import numpy as np

from benchmarks import machine
from benchmarks import run
from benchmarks import steps


def test_cpu_flags_are_known_simd_flags():
    flags = machine.cpu_flags()
    assert set(flags) <= set(machine.SIMD_FLAGS)
    assert "cpu_flags" in machine.machine_info()


def test_without_torch_the_run_says_how_to_install_it(capsys, tmp_path):
    args = run.parse_args(["--torch_python", str(tmp_path / "no-python")])
    assert run.use_torch(args) is False
    assert "pip install torch==2.13.0" in capsys.readouterr().out
    frameworks = {w.framework for w in run.worker_specs(args, False)}
    assert frameworks == {"kfactor"}


def test_pytorch_steps_come_in_every_variant():
    args = run.parse_args(["--parts=steps", "--widths=narrow"])
    torch_workers = [
        w for w in run.worker_specs(args, True) if w.framework == "pytorch"
    ]
    assert len(torch_workers) == 1
    specs = torch_workers[0].items
    variants = {s["variant"] for s in specs if s["kind"] == "factorize"}
    assert variants == set(run.TORCH_VARIANTS)
    assert torch_workers[0].env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_saved_config_has_no_absolute_paths(tmp_path):
    args = run.parse_args(["--out", str(tmp_path)])
    config = run.portable_config(args, run.timing_for(args))
    for value in config.values():
        if isinstance(value, str):
            assert not os.path.isabs(value), value


def test_phases_part_runs_only_when_asked_in_both_frameworks():
    assert "phases" not in run.parse_args([]).parts
    args = run.parse_args(["--parts=phases", "--widths=narrow,full"])
    workers = {w.name: w for w in run.worker_specs(args, True)}
    ours = workers["kfactor-phases"].items
    assert [(s["kind"], s["width"]) for s in ours] == [
        ("phase", "narrow"),
        ("phase", "full"),
    ]
    theirs = workers["pytorch-phases"].items
    variants = {(s["width"], s["variant"]) for s in theirs}
    assert variants == {
        (w, v) for w in ("narrow", "full") for v in run.PHASE_TORCH_VARIANTS
    }
    assert "pytorch-phases" not in {
        w.name for w in run.worker_specs(args, False)
    }
    assert "phase" in run.timing_for(args).window_s


def test_serving_part_runs_only_when_asked_and_on_its_own():
    assert "serving" not in run.parse_args([]).parts
    args = run.parse_args(["--parts=serving"])
    assert args.parts == ["serving"]
    # Not a worker item: `run_serving` measures it before any worker starts.
    names = {spec.name for spec in run.worker_specs(args, use_torch=False)}
    assert names == {"kfactor-inference"}  # the matmul reference only


def test_train_loop_traces_the_step_once():
    # Without the optimizer built first, the first call creates its
    # variables while tracing and TensorFlow traces the step again.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    traces = []
    train_step = model.train_step

    def counted(data):
        traces.append(1)
        return train_step(data)

    model.train_step = counted
    batch = (np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"))
    steps.train_loop(model, [batch])(3)
    assert len(traces) == 1
    assert model.optimizer.iterations.numpy() == 3
