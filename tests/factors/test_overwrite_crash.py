"""Crash-safe overwrite: a saver SIGKILLed at each step of the overwrite.

After the kill, the target holds the old or the new factors; with the
two-rename fallback (no `renameat2`), the next load puts the old copy back
itself. What the kill left beside the target is listed by `kfactor list` and
removed by the next save. Each saver is a forked child (a fresh Python would
spend seconds importing TensorFlow) whose `atomic._reached` hook kills it at
a step; it only copies files and renames, and never touches TensorFlow, so
forking the test process is safe.
"""

import logging
import os
import shutil
import signal

import kfactor
from kfactor.factors import atomic
from kfactor.factors import plugins

import pytest

from tests import fixtures

#: step -> whether the child swaps with the two-rename fallback.
STEPS = {
    "written": False,
    "exchanged": False,
    "moved_aside": True,
    "replaced": True,
}


def fingerprint(directory):
    return kfactor.load_factors(directory)["common"].weights_fingerprint


def overwrite(target, source):
    with atomic.atomic_directory(target, overwrite=True) as temporary:
        shutil.copytree(source, temporary, dirs_exist_ok=True)


def _kill_at(step):
    def reached(at):
        if at == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return reached


def killed_overwrite(target, source, step, fallback):
    """Overwrites `target` in a child killed at `step`; its wait status."""
    pid = os.fork()
    if pid == 0:  # The child: never returns into pytest.
        try:
            atomic._reached = _kill_at(step)
            if fallback:
                atomic.exchange = lambda first, second: False
            overwrite(target, source)
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


@pytest.fixture(scope="module")
def killed_overwrites(tmp_path_factory):
    """step -> target: the factors overwritten by a saver killed there."""
    if atomic._RENAMEAT2 is None:
        pytest.skip("this C library has no renameat2")
    root = tmp_path_factory.mktemp("crash")
    new = fixtures.other_saved_factors()
    targets = {}
    for step, fallback in STEPS.items():
        target = fixtures.copy_factors(root / step / "factors")
        status = killed_overwrite(target, new, step, fallback)
        assert os.WIFSIGNALED(status)
        assert os.WTERMSIG(status) == signal.SIGKILL
        targets[step] = target
    return targets


def _siblings(target):
    return sorted(os.listdir(os.path.dirname(target)))


def test_kill_after_writing_keeps_the_old_factors(killed_overwrites):
    target = killed_overwrites["written"]
    assert fingerprint(target) == fingerprint(fixtures.saved_factors())
    assert [".tmp-" in p for p in atomic.litter(target)] == [True]


def test_kill_after_the_exchange_keeps_the_new_factors(killed_overwrites):
    """`renameat2(RENAME_EXCHANGE)`: no instant without a target."""
    target = killed_overwrites["exchanged"]
    assert fingerprint(target) == fingerprint(fixtures.other_saved_factors())
    (old,) = atomic.litter(target)  # the old copy, swapped out
    assert fingerprint(old) == fingerprint(fixtures.saved_factors())


def test_kill_between_the_renames_is_recovered_on_load(
    killed_overwrites, caplog
):
    target = killed_overwrites["moved_aside"]
    assert not os.path.exists(target)
    with caplog.at_level(logging.WARNING, logger=atomic.__name__):
        assert fingerprint(target) == fingerprint(fixtures.saved_factors())
    assert "restored the previous artefact" in caplog.text
    assert target in caplog.text


def test_a_reader_that_cannot_recover_names_the_old_copy(tmp_path, monkeypatch):
    target = fixtures.copy_factors(tmp_path / "factors")
    status = killed_overwrite(
        target, fixtures.other_saved_factors(), "moved_aside", True
    )
    assert os.WIFSIGNALED(status)
    monkeypatch.setattr(atomic, "recover_for_reading", lambda path: None)
    with pytest.raises(FileNotFoundError, match="interrupted") as info:
        kfactor.load_factors(target)
    command = str(info.value).split("`mv ")[1].split("`")[0]
    old, restored = command.split(" ")
    assert restored == os.path.abspath(target)
    shutil.move(old, restored)  # the hint's `mv OLD TARGET`
    assert fingerprint(target) == fingerprint(fixtures.saved_factors())


def test_a_save_after_a_kill_between_the_renames_recovers_first(tmp_path):
    target = fixtures.copy_factors(tmp_path / "factors")
    killed_overwrite(
        target, fixtures.other_saved_factors(), "moved_aside", True
    )
    with pytest.raises(FileExistsError, match="not empty"):
        # The old copy is back in place, so a save without overwrite stops.
        with atomic.atomic_directory(target):
            pass
    assert fingerprint(target) == fingerprint(fixtures.saved_factors())
    assert atomic.litter(target) == []


def test_kill_after_the_renames_keeps_the_new_factors(killed_overwrites):
    target = killed_overwrites["replaced"]
    assert fingerprint(target) == fingerprint(fixtures.other_saved_factors())


def test_kfactor_list_reports_the_litter(killed_overwrites, capsys):
    target = killed_overwrites["replaced"]
    factors = kfactor.load_factors(target)
    note = plugins.litter_note(factors)
    assert ".old-" in note
    assert "the next save to the same target removes them" in note


@pytest.mark.parametrize("step", ["written", "exchanged", "replaced"])
def test_the_next_save_removes_the_litter(killed_overwrites, step):
    target = killed_overwrites[step]
    assert atomic.litter(target)
    overwrite(target, fixtures.saved_factors())
    assert fingerprint(target) == fingerprint(fixtures.saved_factors())
    assert atomic.litter(target) == []
    assert not any(
        atomic.LOCK_SUFFIX not in name and atomic.SWAP_SUFFIX not in name
        for name in _siblings(target)
        if name.startswith(".")
    )
