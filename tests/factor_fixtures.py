"""Tiny saved factors shared by the factor-artefact tests (built once).

The factorizer is not trained: exactness, format and plugin tests need
factors with fixed weights, not good ones. Each builder is cached for the
session; tests that change files copy the saved factors first.
"""

import atexit
import functools
import os
import shutil
import sys
import tempfile

import keras

from tests import helpers

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.lru_cache(maxsize=None)
def scratch_dir():
    path = tempfile.mkdtemp(prefix="kfactor-factors-")
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.lru_cache(maxsize=None)
def factorizer():
    """An untrained tiny factorizer (tasks `row`, `col`), fixed seed."""
    keras.utils.set_random_seed(7)
    return helpers.tiny_factorizer()


@functools.lru_cache(maxsize=None)
def saved_factors():
    """`factorizer()` saved once; returns the directory (do not modify)."""
    directory = os.path.join(scratch_dir(), "first", "factors")
    factorizer().save_factors(directory, test_accuracy={"row": 0.5})
    return directory


@functools.lru_cache(maxsize=None)
def other_saved_factors():
    """A second, differently initialised factorization of the same teacher."""
    keras.utils.set_random_seed(8)
    other = helpers.tiny_factorizer(factorizer().teacher)
    directory = os.path.join(scratch_dir(), "second", "other")
    other.save_factors(directory)
    return directory


def copy_factors(destination, source=None):
    """A writable copy of the saved factors in `destination`."""
    shutil.copytree(source or saved_factors(), destination)
    return str(destination)


def probe(num=8, seed=3):
    return helpers.blob_images(num, seed)[0]


def console_tool(name):
    """Path of a console script installed beside this Python."""
    return os.path.join(os.path.dirname(sys.executable), name)


def subprocess_env():
    """An environment for a fresh Python: quiet TF, no repo on the path."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    env.pop("PYTHONSTARTUP", None)
    return env


def make_dist_info(site, dist_name, entry_points):
    """Writes `<site>/<dist>-0.1.dist-info` declaring `kfactor.factors`.

    Args:
        site: a folder put on `sys.path` (importlib.metadata scans it).
        dist_name: the distribution's name.
        entry_points: list of `"name = module:attribute"` lines.
    """
    info = os.path.join(site, f"{dist_name}-0.1.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[kfactor.factors]\n" + "\n".join(entry_points) + "\n")
    return info
