"""`import kfactor` picks the TF backend; oneDNN is `configure_cpu()`'s."""

import os
import subprocess
import sys

from kfactor import backend

import pytest

from tests import fixtures

PROBE = (
    "import os, sys, kfactor, keras; "
    "print(keras.backend.backend(), "
    "os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset'))"
)


def run_fresh(code, **env):
    environment = fixtures.subprocess_env()
    for name in ("KERAS_BACKEND", "TF_ENABLE_ONEDNN_OPTS"):
        environment.pop(name, None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_sets_nothing_and_configure_cpu_turns_onednn_on():
    result = run_fresh(
        "import os, sys, kfactor\n"
        "before = os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')\n"
        "loaded = 'tensorflow' in sys.modules\n"
        "kfactor.configure_cpu()\n"
        "import keras\n"
        "from tensorflow.python.util import _pywrap_util_port as port\n"
        "print(keras.backend.backend(), before, loaded, "
        "os.environ['TF_ENABLE_ONEDNN_OPTS'], port.IsMklEnabled())\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "tensorflow",
        "unset",
        "False",
        "1",
        "True",
    ]


def test_other_backend_is_a_clear_error():
    result = run_fresh("import kfactor", KERAS_BACKEND="jax")
    assert result.returncode != 0
    assert "KERAS_BACKEND='jax'" in result.stderr
    assert "Fix:" in result.stderr


def test_configure_cpu_after_tensorflow_is_an_error_with_the_fix():
    result = run_fresh("import tensorflow, kfactor; kfactor.configure_cpu()")
    assert result.returncode != 0
    assert "must run before TensorFlow is imported" in result.stderr
    assert "TF_ENABLE_ONEDNN_OPTS=1" in result.stderr


def test_configure_cpu_keeps_the_users_choice(monkeypatch):
    # TensorFlow is imported in this process: a request that matches the
    # environment is fine, one that does not is refused with the fix.
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert backend.configure_cpu() is True
    with pytest.raises(RuntimeError, match="TF_ENABLE_ONEDNN_OPTS=0"):
        backend.configure_cpu(onednn=False)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert backend.configure_cpu() is False
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_the_command_turns_onednn_on():
    result = run_fresh(
        "import sys; sys.argv = ['kfactor']; import os, kfactor; "
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), "
        "'tensorflow' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True"]


START_UP = (
    "WARNING: All log messages before absl::InitializeLog() is called are "
    "written to STDERR\n"
    "I0000 00:00:1796167867.056440   22024 port.cc:153] oneDNN custom "
    "operations are on.\n"
    "I0000 00:00:1796167867.127069   22024 cpu_feature_guard.cc:227] This "
    "TensorFlow binary is optimized.\n"
    "To enable the following instructions: AVX2 FMA, rebuild TensorFlow.\n"
    "W1201 23:30:53.123456   22024 loader.cc:7] a warning\n"
    "E0000 00:00:1796167873.049082   22024 cuda_platform.cc:52] failed call "
    "to cuInit\n"
)


def test_filter_cpp_log_keeps_records_from_the_level_up():
    assert backend.filter_cpp_log(START_UP, 0) == START_UP
    lines = START_UP.splitlines(keepends=True)
    assert backend.filter_cpp_log(START_UP, 1) == "".join(lines[4:])
    assert backend.filter_cpp_log(START_UP, 2) == lines[5]
    assert backend.filter_cpp_log(START_UP, 3) == ""
    # Text that is no C++ record (a Python traceback, say) always stays.
    assert backend.filter_cpp_log("Traceback\n" + START_UP, 3) == "Traceback\n"


def test_filtered_stderr_filters_what_is_written_to_descriptor_2(capfd):
    with backend.filtered_stderr(2):
        os.write(2, START_UP.encode())
        print("python text", file=sys.stderr)
    err = capfd.readouterr().err
    assert "oneDNN" not in err and "absl::InitializeLog" not in err
    assert "failed call to cuInit" in err
    assert "python text" in err


def test_verbosity_from_argv():
    assert backend.verbosity_from_argv(["kfactor", "list"]) is None
    assert backend.verbosity_from_argv(["kfactor", "--verbosity=0"]) == 0
    assert backend.verbosity_from_argv(["kfactor", "-v", "-2"]) == -2
    assert backend.verbosity_from_argv(["kfactor", "--verbosity=x"]) is None


def test_command_log_level_flag_then_user_variable_then_quiet():
    variable = backend.LOG_LEVEL_VARIABLE
    environ = {}
    assert backend.cpp_log_level_for_command(["kfactor"], environ) == 3
    assert environ == {variable: "3"}
    environ = {variable: "1"}
    assert backend.cpp_log_level_for_command(["kfactor"], environ) == 1
    argv = ["kfactor", "list", "--verbosity=0"]
    assert backend.cpp_log_level_for_command(argv, environ) == 0
    assert environ == {variable: "0"}


def test_is_kfactor_command():
    script = ["/venv/bin/kfactor", "list"]
    assert backend.is_kfactor_command(script, ["python3", *script])
    module = ["python3", "-m", "kfactor.cli", "list"]
    assert backend.is_kfactor_command(["-m", "list"], module)
    pytest_run = ["/venv/bin/pytest", "tests"]
    assert not backend.is_kfactor_command(pytest_run, ["python", *pytest_run])
