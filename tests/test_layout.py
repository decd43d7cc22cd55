"""The package layout: every kfactor import points down the architecture.

`LEVELS` is the architecture, bottom first. A module may import modules of
its own level (inside one subpackage, or the base modules among themselves)
or of a lower one, never of a higher one, and no kfactor import may hide
inside a function (the usual way to dodge a cycle).

Print the import graph, each edge with its levels:

    python tests/test_layout.py
"""

import ast
import pathlib
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "kfactor"

#: The architecture, bottom first: top-level names of kfactor's modules
#: and subpackages.
LEVELS = (
    ("version", "backend", "validation", "keras_internals", "data", "metrics"),
    ("objective",),
    ("layers",),
    ("zoo",),
    ("factors",),
    ("training",),
    ("evaluation", "serving"),
    ("demo",),
    ("cli",),
)


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules():
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(node, module, is_package, known):
    """The kfactor modules an import statement names.

    `from package import name` names `package.name` when that is a module
    (a submodule import), else `package` (a name defined there).
    """
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("kfactor")]
    base = module if is_package else module.rpartition(".")[0]
    if node.level:
        base = ".".join(
            base.split(".")[: len(base.split(".")) - node.level + 1]
        )
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    if not source.startswith("kfactor"):
        return []
    return [
        f"{source}.{a.name}" if f"{source}.{a.name}" in known else source
        for a in node.names
    ]


def imports(module, path):
    """`(imported module, line, at top level)` for each kfactor import."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    known = all_modules()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        names = _imported(node, module, path.name == "__init__.py", known)
        for name in {n for n in names if n in known and n != module}:
            found.append((name, node.lineno, id(node) in top_level))
    return found


def level_of(module):
    """The index in `LEVELS` of a kfactor module; `None` for the package."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    for index, names in enumerate(LEVELS):
        if parts[1] in names:
            return index
    raise AssertionError(
        f"{module} is in no level of LEVELS: add it to tests/test_layout.py"
    )


def edges():
    """`(importer, imported, line, at top level)` over the whole package."""
    return [
        (module, name, line, top)
        for module, path in all_modules().items()
        for name, line, top in imports(module, path)
    ]


def upward_edges():
    found = []
    for importer, imported, line, _ in edges():
        low, high = level_of(imported), level_of(importer)
        if high is not None and low is not None and low > high:
            found.append(f"{importer}:{line} -> {imported}")
    return found


def test_every_module_has_a_level():
    for module in all_modules():
        level_of(module)


def test_no_import_points_up():
    assert upward_edges() == []


def test_no_kfactor_import_inside_a_function():
    hidden = [
        f"{importer}:{line} -> {imported}"
        for importer, imported, line, top in edges()
        if not top
    ]
    assert hidden == []


def test_the_checker_sees_an_upward_edge(tmp_path, monkeypatch):
    package = tmp_path / "kfactor"
    (package / "objective").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "objective" / "__init__.py").write_text("")
    (package / "objective" / "losses.py").write_text(
        "def f():\n    from kfactor.training import factorizer\n"
    )
    (package / "training").mkdir()
    (package / "training" / "__init__.py").write_text("")
    (package / "training" / "factorizer.py").write_text(
        "from kfactor.objective import losses\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert upward_edges() == [
        "kfactor.objective.losses:2 -> kfactor.training.factorizer"
    ]
    assert [e[:3] for e in edges() if not e[3]] == [
        ("kfactor.objective.losses", "kfactor.training.factorizer", 2)
    ]


def print_graph():
    for importer, imported, line, top in sorted(edges()):
        high, low = level_of(importer), level_of(imported)
        mark = "UP" if None not in (high, low) and low > high else "ok"
        where = "" if top else " (inside a function)"
        print(f"{mark} {importer}:{line} -> {imported}{where}")


if __name__ == "__main__":
    print_graph()
