"""`kfactor list|assemble|export`, on tiny factors and the shipped ones."""

import os
import re
import subprocess

from kfactor import cli
from kfactor.factors import plugins

import pytest
import tensorflow as tf
from absl import app

from tests import fixtures

SHIPPED = os.path.join(fixtures.REPO_ROOT, "saved_factors")
DSPRITES_TASKS = ("shape", "scale", "orientation", "pos_x", "pos_y")


def run_cli(*argv):
    remaining = cli.FLAGS(["kfactor", *argv])
    try:
        cli.run(remaining)
    finally:
        cli.FLAGS.unparse_flags()
        cli.FLAGS(["kfactor"])


def test_list_discovers_the_shipped_factors(capsys, monkeypatch):
    monkeypatch.chdir(fixtures.REPO_ROOT)  # a fresh clone: nothing trained
    monkeypatch.setattr(plugins, "entry_point_sources", lambda: [])
    run_cli("list")
    table = capsys.readouterr().out
    for name in ("common", *DSPRITES_TASKS):
        assert f"| {name} |" in table


def test_assemble_and_export_the_shipped_factors(tmp_path, capsys):
    assembled = str(tmp_path / "assembled")
    run_cli("assemble", SHIPPED, "--tasks=shape,scale", f"--out={assembled}")
    out = capsys.readouterr().out
    assert "shape: max |assembled - standalone| = 0" in out
    assert tf.saved_model.contains_saved_model(assembled)

    serving = str(tmp_path / "serving")
    run_cli("export", f"--factors={SHIPPED}", f"--out={serving}")
    out = capsys.readouterr().out
    assert "signature serving_default: images -> orientation_logits" in out
    # Float round-off only: the reloaded graph may fuse ops differently.
    diff = re.search(r"max \|reloaded - in memory\| = (\S+)", out).group(1)
    assert float(diff) < 1e-4
    assert tf.saved_model.contains_saved_model(os.path.join(serving, "1"))


def test_list_a_given_source(capsys):
    run_cli("list", fixtures.saved_factors())
    table = capsys.readouterr().out
    assert "| row | task | 4 | 0.5000 |" in table
    assert "| common | common | - | - |" in table


@pytest.mark.parametrize(
    "argv, message",
    [
        (["assemble", "--tasks=nope", "--out=x"], "unknown: \\['nope'\\]"),
        (["export"], "Expected --out"),
        (["list", "/nonexistent/factors"], "does not exist"),
    ],
)
def test_bad_input_is_one_clear_error(argv, message, tmp_path):
    with pytest.raises(app.UsageError, match=message):
        run_cli(*argv[:1], f"--factors={fixtures.saved_factors()}", *argv[1:])
    assert os.listdir(tmp_path) == []


def test_an_existing_output_is_not_overwritten_unless_asked(tmp_path):
    out = str(tmp_path / "out")
    run_cli("assemble", fixtures.saved_factors(), f"--out={out}")
    with pytest.raises(app.UsageError, match="--overwrite"):
        run_cli("assemble", fixtures.saved_factors(), f"--out={out}")
    run_cli("assemble", fixtures.saved_factors(), f"--out={out}", "--overwrite")


@pytest.mark.large
def test_console_script_lists_the_shipped_factors_in_a_fresh_process():
    result = subprocess.run(
        [fixtures.console_tool("kfactor"), "list", SHIPPED],
        cwd=fixtures.REPO_ROOT,
        env=fixtures.subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| shape | task | 3 |" in result.stdout
