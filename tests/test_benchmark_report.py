"""The benchmark report's derived figures (pure Python, no timing)."""

from benchmarks import report


def _entry(item, rates, units, meta=None, category=None):
    return {
        "framework": "kfactor",
        "variant": "default",
        "item": item,
        "category": category or report.category_of(item),
        "unit": "flop",
        "units_per_call": units,
        "meta": meta or {},
        "windows": [
            {"round": r, "rate": rate, "other_cpu": 0.0}
            for r, rate in enumerate(rates)
        ],
    }


def _layer(index, rates, flops):
    meta = {"input_shape": [128, 4, 4, 8], "filters": 8}
    return _entry(f"layer/full/conv{index}", rates, flops, meta)


def _results():
    entries = {
        "kfactor/default/matmul/2048": _entry(
            "matmul/2048", [100e9, 100e9], 2 * 2048**3
        ),
        # Layer 1: 1 GFLOP a call at 10 GFLOP/s (0.1 s); layer 2: 3 GFLOP at
        # 60 then 30 GFLOP/s (0.05 s, then 0.1 s).
        "kfactor/default/layer/full/conv1": _layer(1, [10e9, 10e9], 1e9),
        "kfactor/default/layer/full/conv2": _layer(2, [60e9, 30e9], 3e9),
    }
    step = _entry(
        "factorize/full/function",
        [100.0, 100.0],
        128,
        meta={"flops_per_image": 0.2e9},
    )
    entries["kfactor/default/factorize/full/function"] = step
    return {
        "config": {"widths": ["full"]},
        "entries": entries,
        "workers": {},
    }


def test_layer_ceiling_is_total_flops_over_summed_times_per_round():
    derived = report.derive(_results())
    row = derived["layers"]["full"]
    # Round 0: 4 GFLOP / 0.15 s; round 1: 4 GFLOP / 0.2 s.
    assert row["ceiling_gflops"]["min"] == 20.0
    assert abs(row["ceiling_gflops"]["max"] - 4 / 0.15) < 1e-9
    median = (20.0 + 4 / 0.15) / 2
    assert abs(row["ceiling_share_of_matmul"] - median / 100) < 1e-12
    # The step: 100 images/s x 0.2 GFLOP = 20 GFLOP/s.
    assert abs(row["step_share_of_ceiling"] - 20 / median) < 1e-12
    assert row["layers"]["conv1"]["share_of_matmul"] == 0.1
    assert row["layers"]["conv2"]["ms_per_call"]["min"] == 50.0


def test_layer_ceiling_is_a_goal_row_and_a_table():
    results = _results()
    results["derived"] = report.derive(results)
    goals = {g["goal"]: g for g in results["derived"]["goals"]}
    ceiling = [g for name, g in goals.items() if "ceiling" in name]
    assert len(ceiling) == 1 and ceiling[0]["met"] is False
    table = "\n".join(report._layer_rows(results))
    assert "| full | conv2 | 4x4x8 | 8 |" in table
    assert "Ceiling, full: " in table and "% of the matmul" in table
