"""Every command: a usage or value error is one line and exit status 1,
and nothing is written first (issue 14)."""

import os
import re
import subprocess
import sys

from kfactor import cli

import pytest

from tests import fixtures


def run_main(*argv):
    """`kfactor ARGV` as `main` runs it: returns (exit code, stderr lines)."""
    remaining = cli.FLAGS(["kfactor", *argv])
    try:
        cli.run_one_line_errors(remaining)
        return 0
    except SystemExit as exit:
        return exit.code
    finally:
        cli.FLAGS.unparse_flags()
        cli.FLAGS(["kfactor"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--num_train=-5"], "num_train >= 1"),
        (["demo", "--num_train=0"], "num_train >= 1"),
        (["demo", "--num_train=737280"], "num_train \\+ num_test <= 737280"),
        (["demo", "--batch_size=0"], "batch_size >= 1"),
        (["list", "/nonexistent/factors"], "does not exist. Fix"),
        (["assemble", "{factors}"], "Expected --out"),
        (["export", "{factors}", "--out={out}", "--model_version=0"], ">= 1"),
        (["assemble", "{factors}", "--out={existing}"], "--overwrite"),
        (["export", "{factors}", "--out={existing}"], "--overwrite"),
    ],
)
def test_bad_input_is_one_line_and_status_1(argv, message, tmp_path, capsys):
    existing = tmp_path / "existing"  # as an earlier export: existing/1/
    (existing / "1").mkdir(parents=True)
    (existing / "1" / "keep.txt").write_text("old")
    out = tmp_path / "out"
    paths = dict(factors=fixtures.saved_factors(), out=out, existing=existing)
    argv = [a.format(**paths) for a in argv]
    code = run_main(*argv, f"--output_dir={out}")
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith(f"kfactor {argv[0]}: ")
    assert re.search(message, lines[0])
    assert sorted(os.listdir(tmp_path)) == ["existing"]  # nothing written
    assert os.listdir(existing / "1") == ["keep.txt"]


@pytest.mark.large  # a fresh Python importing TensorFlow: ~13 s
def test_the_console_entry_prints_one_line(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "kfactor.cli", "demo", "--batch_size=0"],
        env=dict(fixtures.subprocess_env(), PYTHONPATH=fixtures.REPO_ROOT),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    # TensorFlow's C++ start-up lines aside: one line, no help, no traceback.
    ours = [line for line in result.stderr.splitlines() if "kfactor" in line]
    assert ours == [
        "kfactor demo: ValueError: Expected batch_size >= 1. Received: "
        "batch_size=0"
    ]
    assert "Traceback" not in result.stderr
    assert "flags:" not in result.stderr + result.stdout
    assert not out.exists()


def test_a_diverged_demo_is_one_line_naming_the_term(monkeypatch, capsys):
    from kfactor import validation
    from kfactor.lab import demo

    def diverge(config):
        raise validation.NonFiniteError(
            "Expected a finite loss term 'infomin_loss'. Fix: lower the "
            "learning rate."
        )

    monkeypatch.setattr(demo, "run_demo", diverge)
    assert run_main("demo") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "NonFiniteError" in lines[0] and "'infomin_loss'" in lines[0]
    assert "lower the learning rate" in lines[0]
