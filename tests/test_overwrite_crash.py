"""Crash-safe overwrite: a saver SIGKILLed at each step of the overwrite.

After the kill, the target holds the old or the new factors, or
`load_factors` names the surviving old copy and the command restoring it.
Each saver is a forked child (a fresh Python would spend seconds importing
TensorFlow); it only copies files and renames, and never touches
TensorFlow, so forking the test process is safe.
"""

import os
import shutil
import signal

import kfactor
from kfactor.factors import saving as artifacts

import pytest

from tests import fixtures

STEPS = ("written", "moved_aside", "replaced")


def fingerprint(directory):
    return kfactor.load_factors(directory)["common"].weights_fingerprint


def overwrite(target, source):
    with artifacts.atomic_directory(target, overwrite=True) as temporary:
        shutil.copytree(source, temporary, dirs_exist_ok=True)


def killed_overwrite(target, source, step):
    """Overwrites `target` in a child killed at `step`; its wait status."""
    pid = os.fork()
    if pid == 0:  # The child: never returns into pytest.
        try:
            os.environ[artifacts.KILL_AT_ENV] = step
            overwrite(target, source)
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


@pytest.fixture(scope="module")
def killed_overwrites(tmp_path_factory):
    """step -> target: the factors overwritten by a saver killed there."""
    root = tmp_path_factory.mktemp("crash")
    new = fixtures.other_saved_factors()
    targets = {}
    for step in STEPS:
        target = fixtures.copy_factors(root / step / "factors")
        status = killed_overwrite(target, new, step)
        assert os.WIFSIGNALED(status)
        assert os.WTERMSIG(status) == signal.SIGKILL
        targets[step] = target
    return targets


def test_kill_after_writing_keeps_the_old_factors(killed_overwrites):
    target = killed_overwrites["written"]
    assert fingerprint(target) == fingerprint(fixtures.saved_factors())


def test_kill_between_the_renames_names_the_old_copy(killed_overwrites):
    target = killed_overwrites["moved_aside"]
    with pytest.raises(FileNotFoundError, match="interrupted") as info:
        kfactor.load_factors(target)
    command = str(info.value).split("`mv ")[1].split("`")[0]
    old, restored = command.split(" ")
    assert restored == os.path.abspath(target)
    shutil.move(old, restored)  # the hint's `mv OLD TARGET`
    assert fingerprint(target) == fingerprint(fixtures.saved_factors())


def test_kill_after_the_renames_keeps_the_new_factors(killed_overwrites):
    target = killed_overwrites["replaced"]
    assert fingerprint(target) == fingerprint(fixtures.other_saved_factors())


def test_the_next_overwrite_removes_the_old_copies(killed_overwrites):
    target = killed_overwrites["replaced"]
    assert any(".old-" in name for name in os.listdir(os.path.dirname(target)))
    overwrite(target, fixtures.saved_factors())
    assert fingerprint(target) == fingerprint(fixtures.saved_factors())
    assert not any(
        ".old-" in name for name in os.listdir(os.path.dirname(target))
    )
