"""The public surface: `kfactor.__all__` and every module's `__all__`."""

import ast
import importlib
import importlib.metadata
import pathlib
import pkgutil
import types

import kfactor
from kfactor import validation
from kfactor import version
from kfactor.factors import assembly
from kfactor.factors import export
from kfactor.factors import manifest
from kfactor.lab import teacher
from kfactor.objective import losses
from kfactor.zoo import simple_conv as models

import pytest

#: Modules that define no `__all__` yet: edited in parallel (validation and
#: error-handling work); give them one when that lands.
WITHOUT_ALL = set()


def isort_key(name):
    """RUF022's order: SCREAMING_CASE, then CamelCase, then the rest."""
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


def public_modules():
    for info in pkgutil.walk_packages(kfactor.__path__, "kfactor."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            yield info.name


def test_every_top_level_name_resolves():
    for name in kfactor.__all__:
        assert getattr(kfactor, name) is not None, name


def test_top_level_all_is_sorted_without_duplicates():
    assert kfactor.__all__ == sorted(set(kfactor.__all__), key=isort_key)


def test_the_names_users_reach_for_are_top_level():
    assert kfactor.FactorFormatError is manifest.FactorFormatError
    assert kfactor.NonFiniteError is validation.NonFiniteError
    assert kfactor.FactorLoss is losses.FactorLoss
    assert kfactor.assemble is assembly.assemble
    assert kfactor.export_for_serving is export.export_for_serving


def test_the_top_level_is_small_with_one_path_per_name():
    assert len(kfactor.__all__) <= 20
    # No module is re-exported at the top under a second path.
    for name in kfactor.__all__:
        assert not isinstance(getattr(kfactor, name), types.ModuleType), name
    # Experiment pieces live in the lab, exactness checks with the factors.
    for name in (
        "DistilledStudent",
        "SingleTaskNetworks",
        "compile_teacher",
        "warmup_cosine_adam",
        "FactorizationHyperModel",
        "check_assembly",
        "metrics",
        "losses",
        "tuning",
    ):
        assert name not in kfactor.__all__
    assert kfactor.lab.teacher.compile_teacher is teacher.compile_teacher
    assert kfactor.factors.check_assembly is assembly.check_assembly
    assert kfactor.factors.check_export is export.check_export


def type_checking_imports():
    """`{name: module}` of the `if typing.TYPE_CHECKING:` block of
    kfactor/__init__.py (what static analysers see)."""
    tree = ast.parse(pathlib.Path(kfactor.__file__).read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and "TYPE_CHECKING" in ast.unparse(node.test)
    )
    return {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_the_three_lists_of_top_level_names_agree():
    # Each lazy name is listed in `_HOMES` (what loads it), in the
    # TYPE_CHECKING imports (what IDEs see) and in `__all__`.
    assert type_checking_imports() == kfactor._HOMES
    eager = set(kfactor.__all__) - set(kfactor._HOMES)
    assert eager == {"__version__", "configure_cpu"}
    for name in eager:  # imported at once, not lazily
        assert name in vars(kfactor), name


def test_subpackages_load_as_attributes():
    assert kfactor.zoo.simple_conv64 is models.simple_conv64
    with pytest.raises(AttributeError, match="no_such_name"):
        kfactor.no_such_name


def test_demo_widths_live_in_their_module():
    assert "FULL_WIDTHS" not in kfactor.__all__
    assert not hasattr(kfactor, "NARROW_WIDTHS")
    assert len(models.FULL_WIDTHS) == len(models.NARROW_WIDTHS)


@pytest.mark.parametrize("module_name", sorted(public_modules()))
def test_module_all_resolves_and_is_sorted(module_name):
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        assert module_name in WITHOUT_ALL
        return
    assert module_name not in WITHOUT_ALL  # it has one now: drop it there
    assert names == sorted(set(names), key=isort_key)
    for name in names:
        assert hasattr(module, name), f"{module_name}.{name}"


def test_version_is_the_installed_distributions():
    assert kfactor.__version__ == version.__version__
    assert importlib.metadata.version("kfactor") == version.__version__
