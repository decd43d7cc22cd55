"""Selects Keras's TensorFlow backend before Keras is first imported.

kfactor's training step, SavedModel export and TFP estimators are TensorFlow
code, so it needs Keras 3 running on the TensorFlow backend.

`configure_cpu()` turns on TensorFlow's oneDNN CPU kernels, an opt-in
for library users (the `kfactor` command does it): TF enables them by
default only on CPUs with AVX512-VNNI/AMX, and without them the
factorization step on a 2-core AVX2 machine runs at 52 instead of 146
images/s (full width, batch 128; see `benchmarks/`).

When the process is the `kfactor` command, it also keeps TensorFlow's C++
start-up logging (oneDNN, CUDA and CPU-feature notices) off the terminal,
unless `--verbosity` or the user's own `TF_CPP_MIN_LOG_LEVEL` asks for it.
TF 2.21 writes some of those lines through absl before it reads
`TF_CPP_MIN_LOG_LEVEL`, so `quiet_tensorflow_start_up()` also filters what
TF's import writes to file descriptor 2.
"""

import contextlib
import os
import re
import sys
import tempfile

REQUIRED_BACKEND = "tensorflow"
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
#: The command's default: no C++ INFO, WARNING or ERROR lines (FATAL stays).
QUIET_LOG_LEVEL = 3
#: A C++ log record as absl writes it, `I1201 23:30:53.123456  4242 f.cc:7] `
#: (before absl is initialized the time reads `00:00:<seconds since 1970>`).
_CPP_RECORD = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_CPP_SEVERITIES = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 0, 1, 2, 3
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog()"


def configure_cpu(onednn=None):
    """Turns on TensorFlow's oneDNN CPU kernels for this process.

    TensorFlow enables them by default only on CPUs with AVX512-VNNI/AMX.
    Without them, the demo's factorization step on 2 AVX2 cores (AMD Zen 3)
    ran at 52 instead of 146 images/s (full width, batch 128; `benchmarks/`).
    TensorFlow reads the setting once, when it is first imported, so call
    this right after `import kfactor` and before anything imports
    TensorFlow (`import kfactor` alone does not). The `kfactor` command
    does it for you.

    Args:
        onednn: `True` or `False` to turn oneDNN on or off; `None` (the
            default) keeps a `TF_ENABLE_ONEDNN_OPTS` already set in the
            environment and turns oneDNN on otherwise.

    Returns:
        Whether oneDNN is requested for this process.

    Raises:
        RuntimeError: if TensorFlow is already imported with another
            setting (the request would be silently ignored).

    Example:

    >>> import kfactor
    >>> kfactor.configure_cpu()  # doctest: +SKIP
    True
    """
    current = os.environ.get(ONEDNN_VARIABLE)
    if onednn is None:
        value = current if current is not None else "1"
    else:
        value = "1" if onednn else "0"
    if "tensorflow" in sys.modules and current != value:
        raise RuntimeError(
            "configure_cpu() must run before TensorFlow is imported (it "
            f"reads {ONEDNN_VARIABLE} once, at import), but TensorFlow is "
            f"already imported with {ONEDNN_VARIABLE}={current!r}. Fix: "
            "call kfactor.configure_cpu() right after `import kfactor`, "
            f"before other imports, or set {ONEDNN_VARIABLE}={value} "
            "before starting Python."
        )
    os.environ[ONEDNN_VARIABLE] = value
    return value.lower() in ("1", "true")


def ensure_tensorflow_backend():
    """Sets `KERAS_BACKEND=tensorflow`, or raises if Keras runs another one.

    Raises:
        RuntimeError: if Keras was already imported with another backend, or
            `KERAS_BACKEND` names another backend.
    """
    requested = os.environ.setdefault("KERAS_BACKEND", REQUIRED_BACKEND)
    if requested != REQUIRED_BACKEND:
        raise RuntimeError(
            "kfactor needs Keras's TensorFlow backend. Received: "
            f"KERAS_BACKEND={requested!r}. Fix: unset KERAS_BACKEND or set "
            "it to 'tensorflow' before importing kfactor."
        )
    if "keras" in sys.modules:
        import keras

        active = keras.backend.backend()
        if active != REQUIRED_BACKEND:
            raise RuntimeError(
                "kfactor needs Keras's TensorFlow backend, but Keras was "
                f"already imported with backend={active!r}. Fix: import "
                "kfactor before keras, or set KERAS_BACKEND=tensorflow."
            )


def is_kfactor_command(argv=None, orig_argv=None):
    """Whether this process is `kfactor ...` or `python -m kfactor.cli ...`.

    Args:
        argv: the arguments (default `sys.argv`).
        orig_argv: the interpreter's own arguments (default `sys.orig_argv`).
    """
    argv = sys.argv if argv is None else argv
    orig_argv = (
        getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    )
    program = os.path.basename(argv[0]) if argv else ""
    if program.removesuffix(".exe") == "kfactor":
        return True
    return list(orig_argv[1:3]) == ["-m", "kfactor.cli"]


def verbosity_from_argv(argv):
    """The absl `--verbosity` (or `-v`) given on a command line, else None.

    Args:
        argv: the command line, program name first.

    Returns:
        The verbosity as an int, or None when it is absent or not a number
        (absl then reports the bad flag itself).
    """
    for index, arg in enumerate(argv[1:], start=1):
        for name in ("--verbosity", "-verbosity", "-v"):
            if arg == name and index + 1 < len(argv):
                value = argv[index + 1]
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
            else:
                continue
            try:
                return int(value)
            except ValueError:
                return None
    return None


def cpp_log_level_for_command(argv, environ=None):
    """Chooses the command's `TF_CPP_MIN_LOG_LEVEL` and sets it in `environ`.

    An explicit `--verbosity` wins (0 or more: everything, -1: from
    WARNING, -2: from ERROR, -3: FATAL only); else the user's own
    `TF_CPP_MIN_LOG_LEVEL` stays; else the command is quiet (3).

    Args:
        argv: the command line, program name first.
        environ: the environment to read and update (default `os.environ`).

    Returns:
        The level as an int, 0 (all) to 3 (FATAL only).
    """
    environ = os.environ if environ is None else environ
    verbosity = verbosity_from_argv(argv)
    if verbosity is not None:
        environ[LOG_LEVEL_VARIABLE] = str(min(max(-verbosity, 0), 3))
    environ.setdefault(LOG_LEVEL_VARIABLE, str(QUIET_LOG_LEVEL))
    try:
        return min(max(int(environ[LOG_LEVEL_VARIABLE]), 0), 3)
    except ValueError:
        return 0  # TF itself reads a non-number as 0


def filter_cpp_log(text, min_level):
    """Drops absl C++ log records below `min_level` (and absl's banner).

    Args:
        text: what was written to stderr.
        min_level: the `TF_CPP_MIN_LOG_LEVEL` to apply, 0 to 3.

    Returns:
        `text` without those records (a record's continuation lines go with
        it); any other text is kept as written.
    """
    kept = []
    keep = True
    for line in text.splitlines(keepends=True):
        record = _CPP_RECORD.match(line)
        if line.startswith(_ABSL_BANNER):
            keep = True
            if min_level > 0:
                continue
        elif record:
            keep = _CPP_SEVERITIES.index(record.group(1)) >= min_level
        if keep:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def filtered_stderr(min_level):
    """Filters C++ log records written to file descriptor 2 inside the block.

    Everything written in the block (by C++ or Python) is held in a
    temporary file and written back, less the records below `min_level`,
    when the block ends.

    Args:
        min_level: the `TF_CPP_MIN_LOG_LEVEL` to apply; 0 changes nothing.
    """
    try:
        saved = os.dup(2) if min_level > 0 else None
    except OSError:  # no descriptor 2 (a daemon): nothing to filter
        saved = None
    if saved is None:
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            sys.stderr.write(filter_cpp_log(text, min_level))
            sys.stderr.flush()


def quiet_tensorflow_start_up():
    """A context for the first `import tensorflow`: quiet for the command.

    Returns:
        For the `kfactor` command, before TensorFlow is imported: a context
        that sets `TF_CPP_MIN_LOG_LEVEL` (`cpp_log_level_for_command`) and
        filters the import's C++ lines to match. Otherwise (kfactor used as
        a library) a context that does nothing.
    """
    if "tensorflow" in sys.modules or not is_kfactor_command():
        return contextlib.nullcontext()
    return filtered_stderr(cpp_log_level_for_command(sys.argv))


__all__ = [
    "LOG_LEVEL_VARIABLE",
    "ONEDNN_VARIABLE",
    "QUIET_LOG_LEVEL",
    "REQUIRED_BACKEND",
    "configure_cpu",
    "cpp_log_level_for_command",
    "ensure_tensorflow_backend",
    "filter_cpp_log",
    "filtered_stderr",
    "is_kfactor_command",
    "quiet_tensorflow_start_up",
    "verbosity_from_argv",
]
