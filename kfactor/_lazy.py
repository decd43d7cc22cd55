"""Loading a package's submodules on first attribute access (PEP 562)."""

import importlib


def submodule(package, name):
    """`package.name` as a module, imported now; `AttributeError` when no
    such submodule exists (the error `getattr` callers expect).

    Args:
        package: the package's `__name__`.
        name: the attribute asked for.
    """
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{package}.{name}":
                raise
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


__all__ = ["submodule"]
