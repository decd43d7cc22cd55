"""A `save_factors` overwrite that fails part-way loses nothing, leaves no
litter, and says what failed where. Faults are monkeypatched in."""

import errno
import os

import kfactor
from kfactor.factors import atomic
from kfactor.factors import manifest as manifest_lib
from kfactor.factors import saving

import pytest

from tests import fixtures
from tests.factors.test_concurrent_writes import tree_digest


def _enospc_on_the_second_manifest(monkeypatch):
    calls = []
    write = manifest_lib.write_manifest

    def failing(manifest, directory):
        calls.append(directory)
        if len(calls) == 2:  # after the common factor was written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), directory)
        return write(manifest, directory)

    monkeypatch.setattr(manifest_lib, "write_manifest", failing)


def _read_only(monkeypatch):
    def failing(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), kwargs["dir"])

    monkeypatch.setattr(atomic.tempfile, "mkdtemp", failing)


def _permission_denied_at_the_swap(monkeypatch):
    def failing(first, second):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), second)

    monkeypatch.setattr(atomic, "exchange", failing)


def _saved_model_write_raises(monkeypatch):
    write = saving._write_saved_model
    calls = []

    def failing(directory, endpoints):
        calls.append(directory)
        if len(calls) == 2:
            os.makedirs(directory)
            open(os.path.join(directory, "saved_model.pb"), "wb").close()
            raise RuntimeError("SavedModel writer failed (simulated)")
        return write(directory, endpoints)

    monkeypatch.setattr(saving, "_write_saved_model", failing)


#: fault -> (how to inject it, the error's type, words of its message).
FAULTS = {
    "no space left": (
        _enospc_on_the_second_manifest,
        OSError,
        ["No space left on device", "free space"],
    ),
    "read-only": (
        _read_only,
        OSError,
        ["Read-only file system", "writable location"],
    ),
    "permission": (
        _permission_denied_at_the_swap,
        PermissionError,
        ["Permission denied", "make the folder writable"],
    ),
    "SavedModel write raises": (
        _saved_model_write_raises,
        RuntimeError,
        ["SavedModel writer failed (simulated)"],
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_overwrite_keeps_the_old_artefact(
    fault, tmp_path, monkeypatch
):
    inject, error, words = FAULTS[fault]
    target = fixtures.copy_factors(tmp_path / "factors")
    before = tree_digest(target)
    inject(monkeypatch)
    with pytest.raises(error) as info:
        fixtures.factorizer().save_factors(target, overwrite=True)
    message = str(info.value)
    assert target in message
    assert "Nothing was changed" in message
    for word in words:
        assert word in message
    monkeypatch.undo()
    assert tree_digest(target) == before
    assert atomic.litter(target) == []
    hidden = [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert all(
        n.endswith((atomic.LOCK_SUFFIX, atomic.SWAP_SUFFIX)) for n in hidden
    )
    assert kfactor.load_factors(target)["row"].manifest["test_accuracy"] == 0.5


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    target = str(tmp_path / "factors")
    _enospc_on_the_second_manifest(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        fixtures.factorizer().save_factors(target)
    assert not os.path.exists(target)
    assert atomic.litter(target) == []


def test_an_interrupt_while_writing_removes_the_temporary_copy(
    tmp_path, monkeypatch
):
    target = fixtures.copy_factors(tmp_path / "factors")

    def interrupt(step):
        if step == "written":
            raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_reached", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fixtures.factorizer().save_factors(target, overwrite=True)
    assert atomic.litter(target) == []
