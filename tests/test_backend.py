"""`import kfactor` picks the TF backend and oneDNN CPU kernels."""

import subprocess
import sys

from tests import factor_fixtures as ff

PROBE = (
    "import os, sys, kfactor, keras; "
    "print(keras.backend.backend(), os.environ['TF_ENABLE_ONEDNN_OPTS'])"
)


def run_fresh(code, **env):
    environment = ff.subprocess_env()
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


def test_import_selects_tensorflow_and_onednn():
    result = run_fresh(PROBE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tensorflow", "1"]


def test_other_backend_is_a_clear_error():
    result = run_fresh("import kfactor", KERAS_BACKEND="jax")
    assert result.returncode != 0
    assert "KERAS_BACKEND='jax'" in result.stderr
    assert "Fix:" in result.stderr


def test_tensorflow_imported_first_warns_with_the_fix():
    result = run_fresh("import tensorflow, kfactor")
    assert result.returncode == 0, result.stderr
    assert "TensorFlow was imported before kfactor" in result.stderr
    assert "TF_ENABLE_ONEDNN_OPTS=1" in result.stderr
    silenced = run_fresh(
        "import tensorflow, kfactor", TF_ENABLE_ONEDNN_OPTS="0"
    )
    assert "imported before kfactor" not in silenced.stderr
