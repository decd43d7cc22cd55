"""The realistic and inference benchmark parts: same loss, pairing logic.

The same-loss tests need PyTorch (skipped without it); the pairing tests
are the standard library's.
"""

import json
import os

import pytest

from benchmarks import realistic_report
from benchmarks import report
from benchmarks import run

REPO = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)

# === Pairing (no frameworks) ===


def _entry(framework, item, rates, meta=None, calls=None):
    windows = [
        {"round": r, "rate": rate, "other_cpu": 0.0}
        for r, rate in enumerate(rates)
    ]
    if calls is not None:
        for window in windows:
            window["call_seconds"] = calls
    return {
        "framework": framework,
        "variant": "default",
        "item": item,
        "meta": meta or {},
        "windows": windows,
    }


def _entries(*entries):
    return {f"{e['framework']}/{e['variant']}/{e['item']}": e for e in entries}


def test_realistic_ratios_pair_rounds_and_pick_each_rounds_best():
    entries = _entries(
        _entry(
            "kfactor",
            "realistic/full/function",
            [30.0, 40.0],
            meta={"flops_per_image": 2e9},
        ),
        _entry("pytorch", "realistic/full/torch_eager", [20.0, 10.0]),
        _entry("pytorch", "realistic/full/torch_compile", [10.0, 20.0]),
    )
    row = realistic_report.derive_realistic(entries, matmul_gflops=100.0)[
        "full"
    ]
    assert row["best_variant"] == ["eager", "compile"]
    # Round 0: 30 / 20; round 1: 40 / 20.
    assert row["kfactor_over_best"]["min"] == pytest.approx(1.5)
    assert row["kfactor_over_best"]["max"] == pytest.approx(2.0)
    assert row["kfactor_over"]["eager"]["max"] == pytest.approx(4.0)
    assert row["kfactor_share_of_matmul"] == pytest.approx(35 * 2 / 100)
    goals = realistic_report.goals({"realistic": {"full": row}})
    assert goals[0]["met"] and goals[0]["target"] == ">= 1.3"


def test_inference_ratios_latency_and_export_goal():
    meta = {"flop_ideal_speedup": 2.0}
    entries = _entries(
        _entry(
            "kfactor",
            "infer/demo/assembled/1",
            [100.0, 100.0],
            meta,
            calls=[0.01] * 99 + [0.02],
        ),
        _entry("kfactor", "infer/demo/standalone/1", [40.0, 50.0]),
        _entry("kfactor", "infer/demo/savedmodel/1", [95.0, 90.0]),
        _entry("kfactor", "infer/demo/unfolded/1", [80.0, 50.0]),
        _entry("pytorch", "infer/demo/torch_eager/1", [50.0, 60.0]),
        _entry("pytorch", "infer/demo/torch_inductor/1", [70.0, 40.0]),
        _entry("pytorch", "infer/demo/torch_inductor_frozen/1", [60.0, 55.0]),
        _entry("pytorch", "infer/demo/torch_standalone/1", [25.0, 30.0]),
    )
    row = realistic_report.derive_inference(entries)["demo/1"]
    assert row["assembled_over_standalone"]["median"] == pytest.approx(2.25)
    assert row["speedup_over_ideal"] == pytest.approx(2.25 / 2.0)
    assert row["best_pytorch"] == ["inductor", "eager"]
    assert row["kfactor_over_best_pytorch"]["max"] == pytest.approx(100 / 60)
    assert row["folded_over_unfolded"]["min"] == pytest.approx(1.25)
    assert row["folded_over_unfolded"]["max"] == pytest.approx(2.0)
    assert row["pytorch_assembled_over_standalone"]["min"] == 2.0
    assert row["latency_ms"]["assembled"]["p50"] == pytest.approx(10.0)
    assert row["latency_ms"]["assembled"]["p99"] > 10.0
    assert row["latency_ms"]["standalone"] is None
    goals = {
        g["goal"]: g
        for g in realistic_report.goals({"inference": {"demo/1": row}})
    }
    export = goals["inference demo/1: SavedModel time / in-process time"]
    assert export["met"] and export["target"] == "<= 1.1"
    rows = realistic_report.markdown_rows({"inference": {"demo/1": row}})
    assert any("torch_inductor" in r for r in rows)
    assert any("| demo/1 | unfolded |" in r for r in rows)
    assert any(r.endswith("| 1.62 [1.25, 2.00] |") for r in rows)


def test_time_ideal_is_the_flop_formula_in_measured_seconds():
    # 3 tasks; per image the common factor takes 0.02 s and a task factor
    # 0.005 s: standalone 3 * 0.025 = 0.075 s, assembled at best
    # 0.02 + 3 * 0.005 = 0.035 s, so the ideal speed-up is 0.075 / 0.035.
    meta = {"flop_ideal_speedup": 2.73, "tasks": ["a", "b", "c"]}
    entries = _entries(
        _entry("kfactor", "infer/r/assembled/8", [1 / 0.04, 1 / 0.035], meta),
        _entry("kfactor", "infer/r/standalone/8", [1 / 0.075, 1 / 0.075]),
        _entry("kfactor", "infer/r/common/8", [1 / 0.02, 1 / 0.02]),
    )
    row = realistic_report.derive_inference(entries)["r/8"]
    assert row["time_ideal_speedup"]["median"] == pytest.approx(0.075 / 0.035)
    # Round 0 reaches 0.075 / 0.04 of it, round 1 all of it.
    assert row["speedup_over_time_ideal"] == pytest.approx(
        (0.075 / 0.04 + 0.075 / 0.035) / 2 / (0.075 / 0.035)
    )
    rows = realistic_report.markdown_rows({"inference": {"r/8": row}})
    assert any("| r/8 | common |" in r for r in rows)
    # A common factor timed slower than the standalone networks allow
    # (noise) gives no ideal rather than a negative one.
    entries["kfactor/default/infer/r/common/8"]["windows"][0]["rate"] = 1.0
    entries["kfactor/default/infer/r/common/8"]["windows"][1]["rate"] = 1.0
    row = realistic_report.derive_inference(entries)["r/8"]
    assert row["time_ideal_speedup"] is None
    # Without the common factor's row there is no time ideal.
    del entries["kfactor/default/infer/r/common/8"]
    row = realistic_report.derive_inference(entries)["r/8"]
    assert row["time_ideal_speedup"] is None
    assert row["speedup_over_time_ideal"] is None


def test_items_are_grouped_by_workload_and_batch():
    assert report.group_of("infer/demo/assembled/1") == "infer/demo/1"
    assert report.group_of("infer/demo/torch_eager/128") == "infer/demo/128"
    assert report.category_of("infer/demo/savedmodel/1") == "latency"
    assert report.category_of("infer/demo/assembled/128") == "inference"
    assert report.group_of("realistic/full/torch_eager") == "realistic/full"
    assert report.category_of("realistic/full/function") == "realistic"


def test_new_parts_run_only_when_asked_with_every_variant():
    default = run.worker_specs(run.parse_args([]), True)
    assert not any("realistic" in w.name for w in default)
    args = run.parse_args(["--parts=realistic,inference", "--batch", "64"])
    workers = {w.name: w for w in run.worker_specs(args, True)}
    assert {"kfactor-realistic", "pytorch-realistic"} <= set(workers)
    variants = [s["variant"] for s in workers["pytorch-realistic"].items]
    assert variants == list(run.REALISTIC_TORCH_VARIANTS)
    assert workers["kfactor-realistic"].items[0]["batch_size"] == 64
    infer = workers["pytorch-infer"].items
    assert {(s["workload"], s["variant"]) for s in infer} == {
        (w, v)
        for w in ("demo", "realistic")
        for v in ("eager", "channels_last", "inductor", "inductor_frozen")
        + ("standalone",)
    }
    assert infer[0]["batch_sizes"] == [1, 64]
    # The matmul of the same run (the share's yardstick) is always there.
    assert any(
        s["kind"] == "matmul" for s in workers["kfactor-inference"].items
    )
    without = {w.framework for w in run.worker_specs(args, False)}
    assert without == {"kfactor"}


# === Same computation in both frameworks ===


def _paired_models():
    torch = pytest.importorskip("torch")
    from benchmarks import realistic
    from benchmarks import torch_realistic as T

    # log-variance bias -20: the code noise (std ~5e-5) cannot move the loss.
    factorizer = realistic.build_factorizer("tiny", initial_log_var=-20.0)
    teacher, student = T.models("tiny", tf_padding=True)

    def layers(model):
        return {
            layer.name: layer.get_weights()
            for layer in model.layers
            if layer.get_weights()
        }

    weights = layers(factorizer.teacher)
    T.load_keras_weights(teacher.encoder, weights)
    for task in T.TASK_CLASSES:
        T.copy_linear(teacher.heads[task], weights[task])
    T.load_keras_weights(student.common, layers(factorizer.common.encoder))
    for task, factor in factorizer.task_factors.items():
        twin = student.tasks[task]
        T.load_keras_weights(twin.encoder, layers(factor.encoder))
        T.copy_linear(twin.code, factor.code_layer.get_weights())
        T.copy_linear(twin.head, factor.head.get_weights())
        T.copy_linear(twin.aux_head, factor.aux_head.get_weights())
    for twin, projection in zip(student.projections, factorizer.projections):
        T.copy_linear(twin, projection.get_weights())
    batch = realistic.cached_batches(8, "tiny", count=1)[0]
    images, labels = batch
    x = torch.as_tensor(images.numpy()).permute(0, 3, 1, 2).contiguous()
    y = {t: torch.as_tensor(v.numpy()).long() for t, v in labels.items()}
    return factorizer, teacher, student, batch, (x, y)


@pytest.mark.parametrize("training", [False, True])
def test_realistic_loss_is_the_same_in_both_frameworks(training):
    pytest.importorskip("torch")
    from benchmarks import torch_realistic as T

    factorizer, teacher, student, batch, (x, y) = _paired_models()
    total, _, _ = factorizer._forward_and_losses(batch, training=training)
    student.train(training)
    loss = T.factorization_loss(teacher, student, x, y, sample=training)
    assert float(loss.detach()) == pytest.approx(float(total), rel=1e-4)
    if not training:  # the inference logits, assembled, are the same too
        import numpy as np

        logits = T.assembled_forward(student)(x)
        assembled = factorizer(batch[0])
        for task, value in assembled.items():
            np.testing.assert_allclose(
                logits[task].detach().numpy(), value, atol=1e-4
            )


def test_realistic_torch_steps_train_in_each_variant():
    pytest.importorskip("torch")
    from benchmarks import torch_realistic as T

    batches = T.random_batches(1, 4, "tiny")
    for variant in ("eager", "channels_last_foreach"):
        step, data = T.factorization_step("tiny", batches, variant)
        first = float(step(*data[0]))
        assert float(step(*data[0])) != first
    with pytest.raises(ValueError, match="Expected a variant"):
        T.factorization_step("tiny", batches, "fast")


# === The generated docs ===

#: The committed runs of the two parts that docs/PERFORMANCE.md shows.
RUN_JSONS = [
    os.path.join(REPO, "benchmarks", "results", name)
    for name in (
        "run-cpu-inference-folded-zen3.json",
        "run-cpu-realistic-inference-zen3.json",
        "run-cpu-realistic-inference.json",
    )
]
PERFORMANCE_MD = os.path.join(REPO, "docs", "PERFORMANCE.md")


@pytest.mark.parametrize("run_json", RUN_JSONS, ids=os.path.basename)
def test_performance_doc_is_generated_from_the_committed_run(run_json):
    with open(run_json) as f:
        expected = realistic_report.section(json.load(f))
    with open(PERFORMANCE_MD) as f:
        doc = f.read()
    assert expected in doc, (
        "docs/PERFORMANCE.md is stale. Fix: python -m "
        "benchmarks.performance_doc"
    )
