"""Writing a directory atomically: one writer at a time, no window, no litter.

`atomic_directory(target)` yields a temporary sibling `.<name>.tmp-*`; on
success it takes its place:

- **One writer at a time.** A writer holds an exclusive `flock` on the
  sibling `.<name>.lock` for the whole write; a second writer waits for it
  at most `LOCK_TIMEOUT_S` seconds (the `lock_timeout` argument), then gets
  a `TimeoutError` naming the lock and its holder's pid. The lock files
  `.<name>.lock` and `.<name>.swap` stay (a few bytes: the writer's pid;
  removing them would race) and are no litter.
- **No window.** On Linux the new copy and the old target are swapped with
  one `renameat2(RENAME_EXCHANGE)`: the target is the old or the new copy
  at every instant, and the old copy (now in the temporary sibling) is then
  removed. Where the platform has no exchange, the old target is renamed to
  `.<name>.old-*/previous` and the new copy onto the target: a kill between
  the two renames leaves no target, and the next save or load puts the old
  copy back itself (`recover`), with a warning that says so.
- **Readers see the old or the new artefact.** The swap holds the lock's
  companion `.<name>.swap` exclusively for the instant of the renames;
  `reading(path)` (what `load_factors` uses) holds it shared while a set
  of factors is loaded, so a load never mixes two saves.
- **No litter.** A failed write removes its temporary copy and leaves the
  old target as it was; its error names the cause and the path. Siblings
  that a killed writer left (`.tmp-*`, `.old-*`) are removed by the next
  write (once it holds the lock), and `litter(target)` lists them
  (`kfactor list`).

Tests reach the steps through `_reached(step)`, a no-op that they
monkeypatch to fail or kill the writer there.
"""

import contextlib
import ctypes
import ctypes.util
import errno
import glob
import logging
import os
import shutil
import tempfile

from kfactor.factors import locks
from kfactor.factors import manifest as manifest_lib

logger = logging.getLogger(__name__)

LOCK_TIMEOUT_S = locks.LOCK_TIMEOUT_S
LOCK_SUFFIX = locks.LOCK_SUFFIX
SWAP_SUFFIX = locks.SWAP_SUFFIX
reading = locks.reading
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: The steps `_reached` is called at, in order.
STEPS = ("locked", "written", "exchanged", "moved_aside", "replaced")


def _reached(step):
    """Called at each step of a write (`STEPS`); tests monkeypatch it."""


# === Names ===


def litter(target):
    """The `.tmp-*` and `.old-*` siblings of `target` that writers left."""
    target = os.path.abspath(os.fspath(target))
    found = []
    for infix in (manifest_lib.TEMPORARY_INFIX, manifest_lib.PREVIOUS_INFIX):
        found += glob.glob(locks.sibling(glob.escape(target), infix) + "*")
    return sorted(found)


# === The swap ===


def _libc_renameat2():
    name = ctypes.util.find_library("c")
    function = getattr(ctypes.CDLL(name, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_uint,
        ]
    return function


try:
    _RENAMEAT2 = _libc_renameat2()
except OSError:  # No C library to load (not Linux).
    _RENAMEAT2 = None


def exchange(first, second):
    """Swaps two paths atomically; False where the platform cannot.

    Linux's `renameat2(RENAME_EXCHANGE)`; False when the C library lacks it
    or the file system refuses it (`EINVAL`, `ENOSYS`, `ENOTSUP`).
    """
    if _RENAMEAT2 is None:
        return False
    result = _RENAMEAT2(
        _AT_FDCWD,
        os.fsencode(first),
        _AT_FDCWD,
        os.fsencode(second),
        _RENAME_EXCHANGE,
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), first)


def _two_renames(temporary, target):
    """The fallback swap: old target aside, new copy in (module doc)."""
    old = tempfile.mkdtemp(
        prefix=f".{os.path.basename(target)}{manifest_lib.PREVIOUS_INFIX}",
        dir=os.path.dirname(target),
    )
    previous = os.path.join(old, manifest_lib.PREVIOUS_DIR)
    os.replace(target, previous)
    _reached("moved_aside")
    try:
        os.replace(temporary, target)
    except OSError:
        os.replace(previous, target)
        raise
    _reached("replaced")


def _swap(temporary, target):
    """Puts `temporary` in `target`'s place; the old copy is then removed."""
    if not os.path.isdir(target) or not os.listdir(target):
        os.replace(temporary, target)
        _reached("replaced")
    elif exchange(temporary, target):
        _reached("exchanged")
    else:
        _two_renames(temporary, target)


def _remove_litter(target, keep=()):
    for path in litter(target):
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)


def recover(target):
    """Puts back the old copy an interrupted two-rename swap left.

    Returns the restored copy's path, or None when `target` exists or there
    is nothing to restore.
    """
    target = os.path.abspath(os.fspath(target))
    copies = manifest_lib.previous_copies(target)
    if os.path.exists(target) or not copies:
        return None
    os.replace(copies[0], target)
    shutil.rmtree(os.path.dirname(copies[0]), ignore_errors=True)
    logger.warning(
        "An overwrite of %s was interrupted between its renames; kfactor "
        "restored the previous artefact from %s.",
        target,
        copies[0],
    )
    return copies[0]


def recover_for_reading(path):
    """`recover` of `path` or its parent, under their write lock, if any.

    A reader that cannot write there (read-only, another writer busy) gets
    `manifest.recovery_hint`'s command instead.
    """
    path = os.path.abspath(os.fspath(path))
    for target in (path, os.path.dirname(path)):
        if os.path.exists(target) or not manifest_lib.previous_copies(target):
            continue
        try:
            with locks.locked(
                locks.sibling(target, LOCK_SUFFIX), locks.exclusive(), timeout=0
            ):
                recover(target)
        except OSError:
            pass


# === Errors ===


def _write_error(err, target):
    """`err` as an error naming its cause, `target` and what was kept."""
    cause = f"{type(err).__name__}: {err}"
    fix = {
        errno.ENOSPC: "free space on that device or write elsewhere",
        errno.EROFS: "the file system is read-only; write elsewhere",
        errno.EACCES: "make the folder writable or write elsewhere",
        errno.EPERM: "make the folder writable or write elsewhere",
    }.get(getattr(err, "errno", None), "fix the cause and save again")
    message = (
        f"Expected to write {target}. Received: {cause}. Nothing was "
        "changed: any earlier artefact there is intact and the temporary "
        f"copy was removed. Fix: {fix}."
    )
    if isinstance(err, OSError):
        return type(err)(err.errno, message)
    return RuntimeError(message)


def _passes_through(err):
    """kfactor's own checks (and interrupts) are raised as they are."""
    if isinstance(err, OSError):
        return err.errno is None or isinstance(err, TimeoutError)
    return isinstance(err, (ValueError, TypeError)) or not isinstance(
        err, Exception
    )


# === atomic_directory ===


def check_target(directory, overwrite=False):
    """Raises unless `directory` may be (re)written; returns its abspath.

    A missing or empty directory may be written; a non-empty one only with
    `overwrite=True`; a file never.
    """
    target = os.path.abspath(os.fspath(directory))
    if os.path.exists(target) and not os.path.isdir(target):
        raise FileExistsError(
            f"Expected a directory path to write. Received: {target} is a "
            "file. Fix: choose another path or remove the file."
        )
    if os.path.isdir(target) and os.listdir(target) and not overwrite:
        raise FileExistsError(
            f"Expected a new or empty directory. Received: {target} exists "
            "and is not empty. Fix: pass overwrite=True (--overwrite) to "
            "replace it, or choose another directory."
        )
    return target


def _make_parent(target):
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
        return tempfile.mkdtemp(
            prefix=f".{os.path.basename(target)}{manifest_lib.TEMPORARY_INFIX}",
            dir=parent,
        )
    except OSError as err:
        raise PermissionError(
            err.errno,
            f"Expected a writable parent directory for {target}. Received: "
            f"{type(err).__name__}: {err}. Nothing was changed. Fix: choose "
            "a writable location.",
        ) from err


def _enter_write_lock(stack, target, timeout):
    """Takes the exclusive lock of `target`'s writers, held by `stack`."""
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        stack.enter_context(
            locks.locked(
                locks.sibling(target, LOCK_SUFFIX), locks.exclusive(), timeout
            )
        )
    except TimeoutError:
        raise
    except OSError as err:
        raise PermissionError(
            err.errno,
            f"Expected a writable parent directory for {target}. Received: "
            f"{type(err).__name__}: {err}. Nothing was changed. Fix: choose "
            "a writable location.",
        ) from err


@contextlib.contextmanager
def atomic_directory(directory, overwrite=False, lock_timeout=LOCK_TIMEOUT_S):
    """Yields a temporary sibling of `directory`, swapped onto it on success.

    One writer at a time, no window without an artefact, no litter (module
    doc). A failure while writing leaves any earlier `directory` as it was
    and removes the temporary sibling.

    Args:
        directory: the directory to (over)write.
        overwrite: replace an existing non-empty `directory`.
        lock_timeout: seconds to wait for another writer of `directory`.

    Raises:
        TimeoutError: another process held the lock `lock_timeout` s.
        OSError: the write failed (no space, read-only, no permission):
            the message names the cause and the path.

    Example:

    >>> with atomic_directory(str(tmp_path / "out")) as tmp:  # doctest: +SKIP
    ...     open(os.path.join(tmp, "a.txt"), "w").close()
    """
    target = check_target(directory, overwrite)
    with contextlib.ExitStack() as stack:
        _enter_write_lock(stack, target, lock_timeout)
        # Made before the write, so that readers see a writer (`reading`).
        os.close(
            locks.open_lock(locks.sibling(target, SWAP_SUFFIX), create=True)
        )
        _reached("locked")
        # Under the lock, what earlier writers left is stale.
        recover(target)
        _remove_litter(target)
        check_target(target, overwrite)
        temporary = _make_parent(target)
        try:
            yield temporary
            _reached("written")
            check_target(target, overwrite)
            swap = locks.sibling(target, SWAP_SUFFIX)
            with locks.locked(swap, locks.exclusive(), lock_timeout):
                _swap(temporary, target)
        except BaseException as err:
            shutil.rmtree(temporary, ignore_errors=True)
            if _passes_through(err):
                raise
            raise _write_error(err, target) from err
        _remove_litter(target)


def directory_size(directory):
    """Total bytes of the files under `directory`."""
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(directory)
        for name in names
    )


__all__ = [
    "LOCK_SUFFIX",
    "LOCK_TIMEOUT_S",
    "STEPS",
    "SWAP_SUFFIX",
    "atomic_directory",
    "check_target",
    "directory_size",
    "exchange",
    "litter",
    "reading",
    "recover",
    "recover_for_reading",
]
