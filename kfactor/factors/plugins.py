"""Finding factors: explicit directories, `saved_factors/`, entry points.

`load_factors(*sources)` loads every factor under the given sources. With no
source it discovers them, in this order:

1. `./saved_factors/` of the current working directory (the project's);
2. the Python entry points of group `kfactor.factors` of installed
   packages. An entry point's object is a directory path (`str` or
   `os.PathLike`), a function returning one, or a module whose folder holds
   the factor directories, e.g. in the plugin's `setup.py`:
   `entry_points={"kfactor.factors": ["dsprites = my_pkg:FACTORS_DIR"]}`.

Names are global: two sources may hold the same factor (same name, same
weights fingerprint), which is loaded once from the first source; the same
name with different weights is an error, never a silent pick.
"""

import importlib.metadata
import logging
import os
import types

from kfactor.factors import atomic
from kfactor.factors import graph_check
from kfactor.factors import manifest as manifest_lib
from kfactor.factors.saved_factor import SavedFactor

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "kfactor.factors"
PROJECT_FACTORS_DIR = "saved_factors"
#: A read that overlapped a save's swap without its lock is redone once.
_READ_ATTEMPTS = 2


def _entry_point_path(entry_point):
    where = f"entry point {entry_point.name!r} ({entry_point.value})"
    try:
        target = entry_point.load()
    except Exception as err:  # A broken plugin must name itself.
        raise ImportError(
            f"Expected {where} of group {ENTRY_POINT_GROUP!r} to import. "
            f"Received: {type(err).__name__}: {err}. Fix: reinstall or "
            "uninstall the plugin package."
        ) from err
    if isinstance(target, types.ModuleType):
        return os.path.dirname(os.path.abspath(target.__file__))
    if callable(target):
        target = target()
    if isinstance(target, (str, os.PathLike)):
        return os.fspath(target)
    raise TypeError(
        f"Expected {where} to give a directory path, a function returning "
        f"one, or a module. Received: {type(target).__name__}. Fix: point "
        "the entry point at the factors' folder."
    )


def entry_point_sources():
    """`[(label, directory)]` of the installed `kfactor.factors` plugins."""
    entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    owners = {}
    for entry_point in entry_points:
        dist = getattr(entry_point.dist, "name", "?")
        owners.setdefault(entry_point.name, []).append(dist)
    duplicates = {n: d for n, d in owners.items() if len(d) > 1}
    if duplicates:
        raise ValueError(
            f"Expected unique plugin names in entry point group "
            f"{ENTRY_POINT_GROUP!r}. Received: {duplicates} (name: "
            "packages). Fix: uninstall one of the packages, or pass the "
            "factor directories to load_factors explicitly."
        )
    return [
        (f"plugin {ep.name!r}", _entry_point_path(ep))
        for ep in sorted(entry_points, key=lambda ep: ep.name)
    ]


def discover_sources():
    """The sources `load_factors()` uses when given none, in order."""
    sources = []
    project = os.path.join(os.getcwd(), PROJECT_FACTORS_DIR)
    if os.path.isdir(project):
        sources.append(("project saved_factors/", project))
    return sources + entry_point_sources()


def factor_directories(source):
    """The factor directories at or under `source` (hidden ones skipped).

    Raises:
        FileNotFoundError / NotADirectoryError: `source` is missing or a
            file.
        FactorFormatError: a SavedModel directory has no manifest.
    """
    source = os.path.abspath(os.fspath(source))
    if not os.path.exists(source):
        raise FileNotFoundError(
            f"Expected a factor directory or a folder of them. Received: "
            f"{source} does not exist. Fix: check the path."
            + manifest_lib.recovery_hint(source)
        )
    if not os.path.isdir(source):
        raise NotADirectoryError(
            f"Expected a factor directory or a folder of them. Received: "
            f"{source} is a file. Fix: pass the directory holding "
            f"{manifest_lib.MANIFEST_FILE}, or its parent."
        )
    found = []
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if manifest_lib.MANIFEST_FILE in files:
            found.append(root)
            dirs[:] = []
        elif manifest_lib.SAVED_MODEL_DIR in dirs:
            raise manifest_lib.FactorFormatError(
                f"Expected a factor manifest {manifest_lib.MANIFEST_FILE} "
                f"beside {os.path.join(root, manifest_lib.SAVED_MODEL_DIR)}. "
                "Received: none. Fix: re-save the factor with "
                "Factorizer.save_factors (the manifest is required)."
            )
    return found


def _merge(found, directory, manifest, origin):
    name = manifest["name"]
    if name not in found:
        found[name] = (directory, manifest, origin)
        return
    first, first_manifest, first_origin = found[name]
    if first_manifest["weights_fingerprint"] == manifest["weights_fingerprint"]:
        logger.info(
            "Factor %r is in %s and %s with the same weights; using %s.",
            name,
            first,
            directory,
            first,
        )
        return
    raise ValueError(
        f"Expected one factor named {name!r}. Received two with different "
        f"weights: {first} ({first_origin}) and {directory} ({origin}). "
        "Fix: pass only the sources of one factorization to load_factors."
    )


def _check_sources(sources):
    for source in sources:
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(
                "Expected each source as a path (str or os.PathLike), "
                f"given as separate arguments. Received: {source!r} "
                f"({type(source).__name__}). Fix: unpack a list: "
                "load_factors(*paths), or call load_factors() to discover "
                "the factors."
            )


def load_factors(*sources, discover=None, allow_ops=(), trust_factor=False):
    """Loads the factors in `sources` as `SavedFactor` layers, by name.

    Args:
        *sources: factor directories or folders of them (searched
            recursively). None: discover them (module docstring).
        discover: also search the discovered sources after the explicit
            ones; defaults to True only when no source is given.
        allow_ops: op names each factor's graph may hold beyond
            `kfactor.factors.graph_check.ALLOWED_OPS`.
        trust_factor: skip the op check of the graphs. By default every
            factor's graph is checked before any is loaded, and one with
            an op outside the allowlist is refused
            (`kfactor.factors.graph_check.UntrustedFactorError`).

    Returns:
        dict name -> `kfactor.SavedFactor` (`"common"` and the task names),
        the common factor first.

    Example:

    >>> factors = kfactor.load_factors("saved_factors")      # doctest: +SKIP
    >>> sorted(factors)                                      # doctest: +SKIP
    ['common', 'orientation', 'pos_x', 'pos_y', 'scale', 'shape']
    """
    _check_sources(sources)
    if discover is None:
        discover = not sources
    labelled = [(f"argument {i}", s) for i, s in enumerate(sources)]
    if discover:
        labelled += discover_sources()
    if not labelled:
        raise ValueError(
            "Expected factor sources. Received: none, and none discovered "
            f"(no ./{PROJECT_FACTORS_DIR}/, no {ENTRY_POINT_GROUP!r} "
            "plugin). Fix: pass factor directories, save factors with "
            "Factorizer.save_factors, or install a factor plugin."
        )
    sources = [source for _, source in labelled]
    for source in sources:
        atomic.recover_for_reading(source)
    for attempt in range(_READ_ATTEMPTS):
        with atomic.reading(sources) as stale:
            try:
                factors = _load_found(labelled, allow_ops, trust_factor)
            except Exception:
                if not stale() or attempt == _READ_ATTEMPTS - 1:
                    raise
                continue
            if not stale():  # The old or the new set, not a mix.
                return factors
    return factors


def _load_found(labelled, allow_ops, trust_factor):
    found = _found_factors(labelled)
    order = sorted(found, key=lambda n: n != manifest_lib.COMMON)
    for name in order:  # Every graph, before any is loaded.
        graph_check.check_factor_graph(found[name][0], allow_ops, trust_factor)
    return {
        name: SavedFactor(
            found[name][0], allow_ops=allow_ops, trust_factor=trust_factor
        )
        for name in order
    }


def _found_factors(labelled):
    """name -> `(directory, manifest, origin)` of the labelled sources."""
    found = {}
    for origin, source in labelled:
        directories = factor_directories(source)
        if not directories:
            raise FileNotFoundError(
                f"Expected factors under {os.path.abspath(source)} "
                f"({origin}). Received: no directory with "
                f"{manifest_lib.MANIFEST_FILE}. Fix: pass a directory "
                "written by Factorizer.save_factors."
            )
        for directory in directories:
            manifest = manifest_lib.read_manifest(directory)
            _merge(found, directory, manifest, origin)
    return found


def factor_table(factors):
    """A Markdown table of loaded factors (what `kfactor list` prints).

    Example:

    >>> factors = kfactor.load_factors("saved_factors")  # doctest: +SKIP
    >>> print(factor_table(factors))                     # doctest: +SKIP
    """
    lines = [
        "| name | role | classes | test accuracy | fingerprint | common "
        "| directory |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, factor in factors.items():
        accuracy = factor.manifest["test_accuracy"]
        lines.append(
            f"| {name} | {factor.role} | {factor.num_classes or '-'} | "
            f"{'-' if accuracy is None else f'{accuracy:.4f}'} | "
            f"{factor.weights_fingerprint[7:19]} | "
            f"{factor.common_fingerprint[7:19]} | {factor.directory} |"
        )
    return "\n".join(lines)


def litter_note(factors):
    """A note listing what interrupted saves left beside `factors`, or ""."""
    found = set()
    for factor in factors.values():
        for target in (factor.directory, os.path.dirname(factor.directory)):
            found.update(atomic.litter(target))
    if not found:
        return ""
    listed = "\n".join(f"- {path}" for path in sorted(found))
    return (
        "Left by interrupted saves (the next save to the same target "
        f"removes them, or remove them by hand):\n{listed}"
    )


__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_FACTORS_DIR",
    "discover_sources",
    "entry_point_sources",
    "factor_directories",
    "factor_table",
    "litter_note",
    "load_factors",
]
