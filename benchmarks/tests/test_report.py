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


def _torch_entry(mode, rates):
    entry = _entry(f"factorize/narrow/{mode}", rates, 128)
    entry["framework"] = "pytorch"
    return entry


def _versus_torch_results():
    """kfactor at 100 images/s; PyTorch eager 50 then 80, compile 60 then
    40: the best PyTorch is compile in round 0 and eager in round 1."""
    ours = _entry(
        "factorize/narrow/function",
        [100.0, 100.0],
        128,
        meta={"flops_per_image": 0.1e9},
    )
    entries = {
        "kfactor/default/factorize/narrow/function": ours,
        "pytorch/default/factorize/narrow/torch_eager": _torch_entry(
            "torch_eager", [50.0, 80.0]
        ),
        "pytorch/default/factorize/narrow/torch_compile": _torch_entry(
            "torch_compile", [60.0, 40.0]
        ),
    }
    return {"config": {"widths": ["narrow"]}, "entries": entries}


def test_kfactor_over_the_best_pytorch_variant_of_each_round():
    derived = report.derive({**_versus_torch_results(), "workers": {}})
    ratios = derived["kfactor_over_pytorch"]
    best = ratios["factorize/narrow/default"]
    assert abs(best["max"] - 100 / 60) < 1e-12
    assert best["min"] == 100 / 80
    assert ratios["factorize/narrow/default/torch_eager"]["max"] == 2.0
    assert ratios["factorize/narrow/default/torch_compile"]["max"] == 2.5
    assert derived["pytorch_best_variant"]["factorize/narrow/default"] == [
        "torch_compile",
        "torch_eager",
    ]
    # PyTorch's GFLOP/s use kfactor's FLOPs of the same step.
    steps = derived["steps"]
    key = "pytorch/default/factorize/narrow/torch_eager"
    assert steps[key]["flops_per_image"] == 0.1e9
    goals = {g["goal"]: g for g in derived["goals"]}
    name = "factorize step, narrow width, kfactor / best PyTorch variant"
    assert goals[f"{name} of each round"]["met"] is True


def _worker(framework, info):
    return {"framework": framework, "variant": "default", "info": info}


def test_table_names_the_cpu_flags_and_each_pytorch_variant():
    results = _versus_torch_results()
    results["machine"] = {
        "started": "now",
        "cpu_model": "Some CPU",
        "cpu_flags": ["avx2", "avx512f", "avx512_vnni"],
        "usable_cores": 2,
        "memory_bytes": 2**30,
        "hostname": "host",
        "load_average_start": [1.0, 1.0, 1.0],
        "load_average_end": [1.0, 1.0, 1.0],
    }
    tf_info = {"kfactor": "0", "tensorflow": "2", "keras": "3"}
    tf_info.update({"framework": "kfactor", "gpus": [], "env": {}})
    torch_info = {"framework": "pytorch", "torch": "2.13", "threads": 2}
    torch_info["env"] = {"OMP_WAIT_POLICY": "PASSIVE"}
    results["workers"] = {
        "tf": {**_worker("kfactor", tf_info), "peak_rss_bytes": 0},
        "pt": {**_worker("pytorch", torch_info), "peak_rss_bytes": 0},
    }
    for worker in results["workers"].values():
        worker["items"] = []
    results.update(
        config={
            **results["config"],
            "timing": {"repeats": 2},
            "quick": True,
            "batch_size": 128,
        },
        duration_seconds=60.0,
        retries={"retried_windows": 0},
    )
    results["derived"] = report.derive(results)
    table = report.markdown(results)
    assert "CPU flags (of AVX2 / AVX-512 / VNNI / AMX): avx2, " in table
    assert "OMP_WAIT_POLICY=PASSIVE" in table
    row = "| factorize | narrow | default | 1.62 [1.25, 2.00] | - | "
    assert row + "2.08 [1.67, 2.50] | - | compile, eager |" in table
    assert "| factorize | narrow | kfactor | function | default |" in table
