"""`lab.evaluation.plots`: each figure is a PNG of the promised layout."""

import os

from kfactor.lab.evaluation import plots

import matplotlib.image
import numpy as np

DPI = 110  # plots._save
TASKS = ["shape", "scale", "orientation"]
FACTORS = ["shape", "scale", "orientation", "pos_x"]


def png_size(path):
    """`(width, height)` in pixels of a PNG file."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height


def leakage(rows=3):
    rng = np.random.default_rng(0)
    return {
        "matrix": rng.uniform(size=(rows, len(FACTORS))).tolist(),
        "chance": [1 / 3, 1 / 6, 1 / 40, 1 / 32],
        "block_names": TASKS[:rows],
        "factor_names": FACTORS,
    }


def test_accuracy_bars_widen_with_the_tasks(tmp_path):
    accuracies = {
        "teacher": dict(zip(TASKS, (1.0, 0.9, 0.5))),
        "factor networks": dict(zip(TASKS, (0.99, 0.8, 0.4))),
    }
    path = plots.accuracy_bars(accuracies, str(tmp_path / "a" / "acc.png"))
    assert path == str(tmp_path / "a" / "acc.png")  # makes the folder
    # figsize (1.6 per task + 2, 3.6) inches at 110 dpi
    assert png_size(path) == (round((1.6 * 3 + 2) * DPI), round(3.6 * DPI))


def test_mi_heatmaps_take_one_or_per_task_code_dims(tmp_path):
    mi = {"teacher": np.ones((10, 4)), "task_codes": np.zeros((3 * 2, 4))}
    same = plots.mi_heatmaps(mi, FACTORS, TASKS, 2, str(tmp_path / "m1.png"))
    mi["task_codes"] = np.zeros((1 + 2 + 3, 4))
    each = plots.mi_heatmaps(
        mi, FACTORS, TASKS, [1, 2, 3], str(tmp_path / "m2.png")
    )
    assert png_size(same) == png_size(each) == (10 * DPI, 6 * DPI)


def test_leakage_heatmap_adds_a_single_task_panel(tmp_path):
    one = plots.leakage_heatmap(leakage(), str(tmp_path / "one.png"))
    two = plots.leakage_heatmap(
        leakage(),
        str(tmp_path / "two.png"),
        single_task={"matrix": leakage()["matrix"]},
    )
    assert png_size(one) == (6 * DPI, round(4.5 * DPI))
    assert png_size(two) == (12 * DPI, round(4.5 * DPI))


def test_report_figures_writes_the_three_files(tmp_path):
    report = {
        "mi_per_dim": {
            "teacher": np.ones((4, 4)),
            "task_codes": np.ones((6, 4)),
        },
        "factor_names": FACTORS,
        "task_names": TASKS,
        "leakage": leakage(),
        "single_task_leakage": {"linear": {"matrix": leakage()["matrix"]}},
    }
    accuracies = {"teacher": dict(zip(TASKS, (1.0, 1.0, 1.0)))}
    paths = plots.report_figures(report, accuracies, str(tmp_path), 2)
    assert paths == {
        "accuracy": str(tmp_path / plots.ACCURACY_FIGURE),
        "mi_heatmaps": str(tmp_path / plots.MI_FIGURE),
        "leakage": str(tmp_path / plots.LEAKAGE_FIGURE),
    }
    assert all(os.path.getsize(path) > 1000 for path in paths.values())
    assert png_size(paths["leakage"])[0] == 12 * DPI  # with single-task


def test_accuracy_bars_draw_the_tasks_every_model_has(tmp_path):
    # A factorization with held-out factors predicts fewer tasks than its
    # teacher: only the shared tasks get bars (and nothing is looked up).
    accuracies = {
        "teacher": {t: 0.9 for t in FACTORS},
        "factor networks": {t: 0.8 for t in TASKS},
    }
    wide = png_size(
        plots.accuracy_bars(
            {"teacher": accuracies["teacher"]}, tmp_path / "a.png"
        )
    )
    shared = png_size(plots.accuracy_bars(accuracies, tmp_path / "b.png"))
    assert shared[0] < wide[0]


def test_transfer_bars_and_probe_mi_heatmap(tmp_path):
    transfer = {
        "representations": ["common", "teacher", "random_encoder"],
        "held_out": ["pos_x"],
        "factors": {
            f: {
                "held_out": f == "pos_x",
                "chance": 0.1,
                "common": 0.7,
                "teacher": 0.9,
                "random_encoder": 0.2,
            }
            for f in FACTORS
        },
    }
    path = plots.transfer_bars(transfer, tmp_path / "t.png")
    assert os.path.getsize(path) > 1000
    rng = np.random.default_rng(1)
    section = {
        "block_names": ["common", *TASKS, "teacher"],
        "factor_names": FACTORS,
        "matrix": rng.uniform(size=(5, 4)).tolist(),
        "normalized": rng.uniform(size=(5, 4)).tolist(),
    }
    width, height = png_size(
        plots.probe_mi_heatmap(section, tmp_path / "m.png")
    )
    assert (width, height) == (6.5 * DPI, 4.8 * DPI)
