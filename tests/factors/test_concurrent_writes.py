"""Two writers at once, and a reader during a save, with real processes.

The writers of the fast tests are forked children that only copy files
(`atomic_directory`, what `save_factors` writes through) and never touch
TensorFlow; the last test runs `save_factors` in two fresh Pythons.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import time

import kfactor
from kfactor.factors import atomic

import pytest

from tests import fixtures


def tree_digest(directory):
    """sha256 of every file's relative path and bytes under `directory`."""
    digest = hashlib.sha256()
    for root, dirs, names in sorted(os.walk(directory)):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, directory).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def _slow_copy(source, destination, pause):
    """Copies file by file, pausing between: a long, interleavable write."""
    for root, _, names in os.walk(source):
        relative = os.path.relpath(root, source)
        os.makedirs(os.path.join(destination, relative), exist_ok=True)
        for name in names:
            shutil.copy2(
                os.path.join(root, name),
                os.path.join(destination, relative, name),
            )
            time.sleep(pause)


def _writer(target, source, start_at, pause=0.01, lock_timeout=30.0):
    """A forked child overwriting `target` with `source`; its pid.

    It exits 0 on success, 3 on a `TimeoutError` and 4 on any other error.
    """
    pid = os.fork()
    if pid:
        return pid
    code = 4
    try:
        time.sleep(max(0.0, start_at - time.time()))
        with atomic.atomic_directory(
            target, overwrite=True, lock_timeout=lock_timeout
        ) as temporary:
            _slow_copy(source, temporary, pause)
        code = 0
    except TimeoutError:
        code = 3
    finally:
        os._exit(code)


def _exit_code(pid):
    status = os.waitpid(pid, 0)[1]
    assert os.WIFEXITED(status), status
    return os.WEXITSTATUS(status)


@pytest.fixture
def sources():
    return fixtures.saved_factors(), fixtures.other_saved_factors()


def test_two_writers_at_once_leave_one_complete_artefact(tmp_path, sources):
    first, second = sources
    target = fixtures.copy_factors(tmp_path / "factors")
    start = time.time() + 0.3
    pids = [_writer(target, s, start) for s in (first, second)]
    assert [_exit_code(pid) for pid in pids] == [0, 0]  # one waited
    assert tree_digest(target) in {tree_digest(first), tree_digest(second)}
    assert atomic.litter(target) == []
    factors = kfactor.load_factors(target)
    common = factors["common"].weights_fingerprint
    assert all(f.common_fingerprint == common for f in factors.values())


def test_a_second_writer_waits_at_most_lock_timeout(tmp_path, sources):
    first, second = sources
    target = fixtures.copy_factors(tmp_path / "factors")
    slow = _writer(target, second, time.time(), pause=0.2)
    time.sleep(0.5)  # it holds the lock by now
    begin = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        with atomic.atomic_directory(target, True, lock_timeout=0.5):
            pass
    waited = time.monotonic() - begin
    assert 0.5 <= waited < 2.0
    message = str(info.value)
    assert f"pid {slow}" in message
    assert atomic.LOCK_SUFFIX in message
    assert "lock_timeout" in message
    assert _exit_code(slow) == 0
    assert tree_digest(target) == tree_digest(second)


def test_a_reader_during_saves_sees_the_old_or_the_new_set(tmp_path, sources):
    first, second = sources
    target = fixtures.copy_factors(tmp_path / "factors")
    expected = {
        kfactor.load_factors(s)["common"].weights_fingerprint for s in sources
    }
    pid = os.fork()
    if pid == 0:
        code = 4
        try:
            for i in range(6):
                with atomic.atomic_directory(target, True) as temporary:
                    _slow_copy(sources[i % 2], temporary, 0.0)
            code = 0
        finally:
            os._exit(code)
    loads = 0
    while not os.waitpid(pid, os.WNOHANG)[0] or not loads:
        factors = kfactor.load_factors(target)
        common = factors["common"].weights_fingerprint
        assert common in expected
        assert {f.common_fingerprint for f in factors.values()} == {common}
        loads += 1
        time.sleep(0.1)  # a reader in a loop would starve the writer
    assert loads >= 1


_SAVE = textwrap.dedent(
    """
    import sys
    import keras
    from tests import fixtures
    keras.utils.set_random_seed(int(sys.argv[2]))
    fixtures.tiny_factorizer().save_factors(sys.argv[1], overwrite=True)
    """
)


def test_two_save_factors_processes_at_once(tmp_path):
    target = str(tmp_path / "factors")
    env = dict(fixtures.subprocess_env(), PYTHONPATH=fixtures.REPO_ROOT)
    savers = [
        subprocess.Popen(
            [sys.executable, "-c", _SAVE, target, str(seed)],
            cwd=fixtures.REPO_ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        for seed in (1, 2)
    ]
    for saver in savers:
        _, err = saver.communicate(timeout=240)
        assert saver.returncode == 0, err.decode()[-2000:]
    factors = kfactor.load_factors(target)
    common = factors["common"].weights_fingerprint
    assert sorted(factors) == ["col", "common", "row"]
    assert {f.common_fingerprint for f in factors.values()} == {common}
    assert atomic.litter(target) == []
