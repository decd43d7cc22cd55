"""A quiet `kfactor` command: no TF start-up log; `--help` per command."""

import os
import subprocess
import sys

from kfactor import cli

import pytest

from tests import fixtures

SHIPPED = os.path.join(fixtures.REPO_ROOT, "saved_factors")
#: What the `kfactor` console script runs (setup.py's entry point).
CONSOLE_SCRIPT = (
    "import sys; sys.argv[0] = 'kfactor'; "
    "from kfactor.cli import main; sys.exit(main())"
)


def run_kfactor(*argv, **env):
    """`kfactor ARGV` in a fresh process with no TF_* or KERAS_* variables."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TF_", "KERAS_"))
    }
    environment.update(PYTHONPATH=fixtures.REPO_ROOT, **env)
    return subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT, *argv],
        cwd=fixtures.REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_list_prints_its_table_and_nothing_else():
    result = run_kfactor("list", SHIPPED)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| name | role |")
    assert len(lines) == 2 + 6  # header, rule, common + 5 tasks
    assert all(line.startswith("|") for line in lines)


@pytest.mark.large
def test_verbosity_brings_back_tensorflow_start_up_lines():
    result = run_kfactor("list", SHIPPED, "--verbosity=0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "oneDNN custom operations are on" in result.stderr


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_command_help_lists_the_commands_flags(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_flags(["kfactor", command, "--helpshort"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"kfactor {command}: ")
    for name in cli.COMMAND_FLAGS[command]:
        assert f"--{name}:" in out or f"--[no]{name}:" in out
    assert "--verbosity:" in out


def test_demo_help_lists_every_demo_setting(capsys):
    with pytest.raises(SystemExit):
        cli.parse_flags(["kfactor", "demo", "--help"])
    out = capsys.readouterr().out
    for name in ("num_train", "factor_epochs", "[no]variational", "beta"):
        assert f"--{name}:" in out
    assert "--tasks:" not in out  # another command's flag


def test_help_without_a_command_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        cli.parse_flags(["kfactor", "--help"])
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert f"  {command} " in out
    assert "kfactor <command> --help" in out


def test_every_flag_of_the_cli_belongs_to_a_command():
    listed = {name for names in cli.COMMAND_FLAGS.values() for name in names}
    defined = {flag.name for flag in cli.FLAGS.get_flags_for_module(cli)}
    assert defined == listed
