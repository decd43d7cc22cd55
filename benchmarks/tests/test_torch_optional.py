"""The benchmarks run without PyTorch: only the torch workers import it."""

import os
import subprocess
import sys

REPO = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
#: Every module the TensorFlow worker and the driver import.
TF_SIDE_MODULES = (
    "benchmarks.run",
    "benchmarks.worker_tf",
    "benchmarks.realistic",
    "benchmarks.inference",
    "benchmarks.realistic_report",
)


def test_the_tensorflow_side_imports_with_torch_unavailable():
    # A meta-path finder makes `import torch` raise ModuleNotFoundError, as
    # on a machine without torch (`sys.modules["torch"] = None` would trip
    # scipy, which looks the name up in sys.modules).
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        f"for name in {TF_SIDE_MODULES!r}:\n"
        "    __import__(name)\n"
        "print('imported')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("imported")


def test_both_frameworks_read_one_set_of_realistic_settings():
    # The PyTorch side must not redefine what the TF side reads.
    with open(os.path.join(REPO, "benchmarks", "torch_realistic.py")) as f:
        source = f.read()
    for name in ("TASK_CLASSES", "SIZES", "KD_WEIGHT", "LEARNING_RATE"):
        assert f"\n{name} = " not in source, name
        assert f"from benchmarks.realistic_config import {name}\n" in source


def test_the_torch_side_mobilenet_stages_are_the_zoos():
    from kfactor.zoo.cifar import MOBILENET_V2_CIFAR_STAGES

    from benchmarks import realistic_config

    assert realistic_config.MOBILENET_V2_STAGES == MOBILENET_V2_CIFAR_STAGES
