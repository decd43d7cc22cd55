"""The locks of `kfactor.factors.atomic`: `flock` on hidden sibling files.

`.<name>.lock` is held exclusively by a writer of `<name>` for its whole
write; `.<name>.swap` exclusively by the swap, for the instant of the
renames, and shared by readers (`reading`). Without `fcntl` (not POSIX)
nothing is locked.
"""

import contextlib
import os
import time

try:
    import fcntl
except ImportError:  # Not POSIX: no locking (module doc).
    fcntl = None

#: How long a second writer waits for the first (seconds).
LOCK_TIMEOUT_S = 60.0
LOCK_SUFFIX = ".lock"
SWAP_SUFFIX = ".swap"
_POLL_S = 0.05


def sibling(target, suffix):
    parent, name = os.path.split(target)
    return os.path.join(parent, f".{name}{suffix}")


def open_lock(path, create):
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        return None


def _acquire(fd, mode, path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    raise TimeoutError(
        f"Expected to lock {path} within {timeout:g} s. Received: another "
        f"process (pid {holder}) is writing there still. Fix: wait for it "
        "and retry, pass a longer lock_timeout, or stop that process."
    )


@contextlib.contextmanager
def locked(path, mode, timeout, create=True):
    if fcntl is None:
        yield
        return
    fd = open_lock(path, create)
    if fd is None:  # Never written: nothing to wait for.
        yield
        return
    try:
        _acquire(fd, mode, path, timeout)
        if mode == fcntl.LOCK_EX and path.endswith(LOCK_SUFFIX):
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # Releases the lock.


def _swap_files(path):
    path = os.path.abspath(os.fspath(path))
    return [
        sibling(target, SWAP_SUFFIX) for target in (path, os.path.dirname(path))
    ]


@contextlib.contextmanager
def reading(paths, timeout=LOCK_TIMEOUT_S):
    """Holds off the swap of each of `paths` (or their parents) while read.

    Yields a function telling whether the read must be redone: a writer
    made its swap lock (which it does before any swap) after the read
    began, so that the read held no lock against it.
    """
    files = [f for path in paths for f in _swap_files(path)]
    if fcntl is None:
        yield lambda: False
        return
    with contextlib.ExitStack() as stack:
        held = {f for f in files if os.path.exists(f)}
        for f in sorted(held):
            stack.enter_context(locked(f, fcntl.LOCK_SH, timeout, False))
        yield lambda: any(os.path.exists(f) for f in set(files) - held)


def exclusive():
    return None if fcntl is None else fcntl.LOCK_EX


__all__ = [
    "LOCK_SUFFIX",
    "LOCK_TIMEOUT_S",
    "SWAP_SUFFIX",
    "exclusive",
    "locked",
    "open_lock",
    "reading",
    "sibling",
]
