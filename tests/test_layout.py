"""The package layout: every kfactor import points down the architecture.

`LEVELS` is the architecture, bottom first. A module may import modules of
its own level (inside one subpackage, or the base modules among themselves)
or of a lower one, never of a higher one, and no kfactor import may hide
inside a function (the usual way to dodge a cycle).

Print the import graph, each edge with its levels:

    python tests/test_layout.py
"""

import ast
import os
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "kfactor"

#: The architecture, bottom first: top-level names of kfactor's modules
#: and subpackages.
LEVELS = (
    ("_lazy", "version", "backend", "validation", "keras_internals", "data"),
    ("objective",),
    ("layers",),
    ("zoo",),
    ("factors",),
    ("training",),
    ("serving",),
    ("lab",),
    ("cli",),
)

#: The lab's own levels, bottom first (`kfactor.lab.<name>`). The core is
#: every level below `lab`: it never imports the lab.
LAB_LEVELS = (
    ("datasets", "disentanglement"),
    ("teacher", "baselines", "evaluation"),
    ("tuning",),
    ("demo",),
)

#: Packages of the `lab` and `tune` extras: the core never loads them.
EXTRAS_MODULES = (
    "sklearn",
    "threadpoolctl",
    "matplotlib",
    "keras_tuner",
    "tensorflow_datasets",
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
    for node in tree.body:  # `if TYPE_CHECKING:` imports are module level
        if isinstance(node, ast.If):
            top_level.update(id(child) for child in node.body)
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
    """`(index in LEVELS, index in LAB_LEVELS)` of a kfactor module (the
    second is 0 outside the lab); `None` for the package itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    for index, names in enumerate(LEVELS):
        if parts[1] in names:
            return index, _lab_level(module, parts)
    raise AssertionError(
        f"{module} is in no level of LEVELS: add it to tests/test_layout.py"
    )


def _lab_level(module, parts):
    if parts[1] != "lab":
        return 0
    if len(parts) == 2:
        return -1  # the lab's package: imports nothing
    for index, names in enumerate(LAB_LEVELS):
        if parts[2] in names:
            return index
    raise AssertionError(
        f"{module} is in no level of LAB_LEVELS: add it to tests/test_layout.py"
    )


def is_lab(module):
    return module == "kfactor.lab" or module.startswith("kfactor.lab.")


def is_core(module):
    return not is_lab(module) and module != "kfactor.cli"


def core_to_lab_edges():
    return [
        f"{importer}:{line} -> {imported}"
        for importer, imported, line, _ in edges()
        if is_core(importer) and is_lab(imported)
    ]


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


def test_the_core_never_imports_the_lab():
    assert core_to_lab_edges() == []


def _run_python(code):
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_import_kfactor_loads_nothing_heavy_and_sets_nothing():
    result = _run_python(
        "import os, sys\n"
        "before = dict(os.environ)\n"
        "import kfactor\n"
        "heavy = ('tensorflow', 'keras') + "
        f"{EXTRAS_MODULES!r}\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "print(sorted(k for k in os.environ if before.get(k) != "
        "os.environ[k] and k != 'KERAS_BACKEND'))\n"
    )
    assert result.stdout.splitlines() == ["[]", "[]"]
    assert result.stderr == ""


def test_the_core_runs_without_the_lab_extras():
    """Every core module imports, and a Factorizer trains a step, while the
    `lab` and `tune` extras' packages cannot be imported at all."""
    core = sorted(m for m in all_modules() if is_core(m))
    blocker = (
        "import sys\n"
        "class Blocker:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {EXTRAS_MODULES!r}:\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Blocker())\n"
    )
    result = _run_python(
        blocker
        + "import importlib\n"
        + f"for name in {core!r}:\n"
        + "    importlib.import_module(name)\n"
        + "import numpy as np, kfactor\n"
        + "from kfactor import zoo\n"
        + "widths = (4, 4, 4, 4, 4, 4)\n"
        + "teacher = zoo.multitask_teacher({'a': 3}, "
        + "encoder=zoo.simple_conv64(8, widths=widths))\n"
        + "f = kfactor.Factorizer(teacher, "
        + "common=zoo.simple_conv64(8, widths=widths), "
        + "tasks={'a': zoo.simple_conv64(8, widths=widths)})\n"
        + "f.compile()\n"
        + "x = np.random.rand(8, 64, 64, 1).astype('float32')\n"
        + "logs = f.fit(x, {'a': np.zeros(8, 'int32')}, epochs=1, "
        + "verbose=0).history\n"
        + f"print(sorted(m for m in {EXTRAS_MODULES!r} if m in sys.modules))\n"
    )
    assert result.stdout.splitlines()[-1] == "[]"


#: Modules whose tests live outside their mirrored folder, with the test
#: files that exercise them (each must name the module or one of its
#: public names).
TESTED_ELSEWHERE = {
    "kfactor.data.arrays": ["tests/lab/datasets/test_files.py"],
    "kfactor.factors.locks": ["tests/factors/test_concurrent_writes.py"],
    "kfactor.factors.publish": ["tests/factors/test_export.py"],
    "kfactor.lab.demo.rescoring": ["tests/test_cli_evaluate.py"],
    "kfactor.lab.demo.teacher": ["tests/lab/test_teacher.py"],
    "kfactor.lab.disentanglement.symmetry": ["tests/lab/test_teacher.py"],
    "kfactor.layers.factor_layers": ["tests/training/test_factorizer.py"],
    "kfactor.layers.features": ["tests/zoo/test_applications.py"],
    "kfactor.layers.heads": ["tests/objective/test_cross_task.py"],
    "kfactor.training.infomax": ["tests/training/test_callbacks.py"],
    "kfactor.version": ["tests/test_public_api.py"],
}
TESTS = PACKAGE.parent / "tests"


def _package_exports(package, known):
    """Name -> defining module, from a package's `__init__` imports."""
    path = known.get(package)
    if path is None or path.name != "__init__.py":
        return {}
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found[alias.asname or alias.name] = (
                    full if full in known else node.module
                )
    return found


def modules_tested_by(test_file, known):
    """The kfactor modules (of `known`) a test file imports or reaches by
    attribute (`from kfactor.layers import TaskCode` reaches
    layers.factor_layers)."""
    tree = ast.parse(test_file.read_text())
    exports = {}

    def exported(package):
        if package not in exports:
            exports[package] = _package_exports(package, known)
        return exports[package]

    found, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
                aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.update(
                    {full, exported(node.module).get(alias.name, full)}
                )
                aliases[alias.asname or alias.name] = full
    for node in ast.walk(tree):
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if not (isinstance(node, ast.Name) and node.id in aliases):
            continue
        base = aliases[node.id]
        for attr in reversed(chain):
            found.add(exported(base).get(attr, f"{base}.{attr}"))
            base = f"{base}.{attr}"
    return found & set(known)


def mirrored_test_folder(module):
    """`kfactor.lab.demo.run` -> tests/lab/demo; top-level modules ->
    tests/."""
    return TESTS.joinpath(*module.split(".")[1:-1])


def modules_without_tests():
    known = all_modules()
    tested = {}  # test file -> the modules it reaches
    missing = []
    for module, path in sorted(known.items()):
        private = path.name.startswith("_")  # tested through its users
        if private or module in TESTED_ELSEWHERE:
            continue
        folder = mirrored_test_folder(module)
        files = sorted(folder.glob("test_*.py")) if folder.is_dir() else []
        for f in files:
            if f not in tested:
                tested[f] = modules_tested_by(f, known)
        if not any(module in tested[f] for f in files):
            missing.append(module)
    return missing


def test_tests_mirror_the_tree():
    """Each public module is exercised by a test file in its mirrored
    folder (tests/<subpackage>/test_*.py), or by the files
    `TESTED_ELSEWHERE` names."""
    assert modules_without_tests() == []
    for module, files in TESTED_ELSEWHERE.items():
        names = [module.rsplit(".", 1)[-1]]
        names += getattr(__import__(module, fromlist=["_"]), "__all__", [])
        for name in files:
            text = (PACKAGE.parent / name).read_text()
            assert any(n in text for n in names), (module, name)


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
        if is_core(importer) and is_lab(imported):
            mark = "LAB"
        where = "" if top else " (inside a function)"
        print(f"{mark} {importer}:{line} -> {imported}{where}")


if __name__ == "__main__":
    print_graph()
