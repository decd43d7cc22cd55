"""README.md and docs/*.md against the code: snippets, commands, names,
links.

- Every ```python snippet runs. The snippets of one page run in order in one
  namespace (like a doctest of the page), in a temporary directory, after a
  cheap setup that gives them the names they take as given (`train_ds`,
  `teacher`, ...): tiny data, narrow networks, one or two batches. A snippet
  that cannot run here carries, on the line before its fence,
  `<!-- docs-test: skip: REASON -->`.
- Every command of a ```bash block is checked without running it (most
  train for minutes): a `kfactor` command and its flags exist, a `python`
  script or `-m` module exists and defines the flags given to it, and a
  `pip install` names extras and paths that exist.
- Every `kfactor.x.y` name resolves, and every relative link (and its
  `#anchor`) points at something that exists.
"""

import functools
import glob
import importlib
import os
import re
import shlex
import subprocess
import sys

import kfactor
from kfactor.zoo.simple_conv import NARROW_WIDTHS

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures

SKIP_MARKER = re.compile(r"<!-- docs-test: skip: (?P<reason>.+?) -->")
DOCS = sorted(
    os.path.relpath(path, fixtures.REPO_ROOT)
    for path in [
        os.path.join(fixtures.REPO_ROOT, "README.md"),
        *glob.glob(os.path.join(fixtures.REPO_ROOT, "docs", "*.md")),
    ]
)
#: Pages whose snippets train and save several networks: `--run_large`.
LARGE_DOCS = ("docs/ECOSYSTEM.md", "docs/FACTORS.md")


def python_snippets(text):
    """`(line, code, skip_reason)` of each ```python block of `text`."""
    lines = text.splitlines()
    snippets = []
    for number, line in enumerate(lines):
        if line.strip() != "```python":
            continue
        end = lines.index("```", number + 1)
        before = next((x for x in reversed(lines[:number]) if x.strip()), "")
        marker = SKIP_MARKER.search(before)
        code = "\n".join(lines[number + 1 : end])
        snippets.append((number + 1, code, marker and marker["reason"]))
    return snippets


def dsprites_like(tasks, num=16, batch_size=8, seed=0):
    """Random 64x64x1 images with `{task: label}`: a finite tf.data set."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(num, 64, 64, 1)).astype("float32")
    labels = {t: rng.integers(0, n, num) for t, n in tasks.items()}
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(
        batch_size
    )


def narrow_teacher(tasks):
    encoder = kfactor.zoo.simple_conv64(10, widths=NARROW_WIDTHS)
    return kfactor.zoo.multitask_teacher(tasks, encoder=encoder)


def narrow_factorizer(teacher):
    return kfactor.Factorizer(
        teacher,
        common=kfactor.zoo.simple_conv64(10, widths=NARROW_WIDTHS),
        tasks={
            t: kfactor.zoo.simple_conv64(None, widths=NARROW_WIDTHS)
            for t in teacher.output
        },
    )


def page_context(page):
    """The names a page's snippets take as given (files in the cwd too)."""
    tasks = {"shape": 3, "scale": 6}
    context = {
        "train_ds": dsprites_like(tasks),
        "test_ds": dsprites_like(tasks, seed=1),
    }
    if page in ("README.md", "docs/GUIDE.md", "docs/ECOSYSTEM.md"):
        teacher = narrow_teacher(tasks)
        teacher.save("teacher.keras")
        context.update(teacher=teacher)
    elif page == "docs/FACTORS.md":
        factorizer = narrow_factorizer(narrow_teacher(tasks))
        factorizer.compile()
        factorizer.fit(context["train_ds"], epochs=1, verbose=0)
        color = {"color": 4}
        context.update(
            factorizer=factorizer,
            teacher=narrow_teacher(color),
            my_encoder=kfactor.zoo.simple_conv64(None, widths=NARROW_WIDTHS),
            train_ds=dsprites_like(color),
        )
    return context


def doc_params():
    for page in DOCS:
        marks = [pytest.mark.large] if page in LARGE_DOCS else []
        yield pytest.param(page, marks=marks, id=page)


# Random images and an untrained teacher: the common code may well collapse.
@pytest.mark.filterwarnings(
    "ignore::kfactor.training.callbacks.CommonFactorCollapseWarning"
)
@pytest.mark.parametrize("page", doc_params())
def test_page_snippets_run(page, tmp_path, monkeypatch, eager):
    with open(os.path.join(fixtures.REPO_ROOT, page)) as f:
        snippets = python_snippets(f.read())
    monkeypatch.chdir(tmp_path)
    namespace = page_context(page)
    try:
        for line, code, skip_reason in snippets:
            if skip_reason:
                continue
            compiled = compile(code, f"{page}:{line}", "exec")
            exec(compiled, namespace)  # noqa: S102
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_every_snippet_runs_or_says_why_not():
    skipped = {}
    for page in DOCS:
        with open(os.path.join(fixtures.REPO_ROOT, page)) as f:
            for line, _, reason in python_snippets(f.read()):
                if reason is not None:
                    assert len(reason) > 10, f"{page}:{line}: say why"
                    skipped[f"{page}:{line}"] = reason
    # The README's snippets all run; keep it that way.
    assert not any(key.startswith("README.md:") for key in skipped)


# === Commands ===

#: Programs whose commands are not checked (tools, services, shells).
UNCHECKED_PROGRAMS = (
    "curl",
    "docker",
    "gsutil",
    "kubectl",
    "pytest",
    "ruff",
    "saved_model_cli",
    "tensorboard",
    "/usr/bin/time",
)
OPERATORS = ("&&", "||", ";", "|")


def bash_commands(text):
    """`(line, argv)` of each command of the ```bash blocks of `text`."""
    lines = text.splitlines()
    commands = []
    number = 0
    while number < len(lines):
        if lines[number].strip() != "```bash":
            number += 1
            continue
        end = lines.index("```", number + 1)
        pending, start = "", None
        for index in range(number + 1, end):
            line = lines[index]
            if start is None:
                start = index + 1
            pending += line.rstrip("\\") + " " if line.endswith("\\") else line
            if line.endswith("\\"):
                continue
            try:
                tokens = shlex.split(pending, comments=True)
            except ValueError:  # a quote spans lines
                pending += "\n"
                continue
            command = []
            for token in [*tokens, ";"]:
                if token in OPERATORS:
                    if command:
                        commands.append((start, command))
                    command = []
                else:
                    command.append(token)
            pending, start = "", None
        number = end + 1
    return commands


def _flag_names(argv):
    """The `--name`s of argv (`[--a=b]` optional-flag brackets dropped)."""
    names = []
    for token in argv:
        token = token.strip("[]")
        if token.startswith("--"):
            names.append(token[2:].split("=", 1)[0])
    return names


@functools.cache
def _source(path):
    with open(path) as f:
        return f.read()


def _defines(path, name):
    """Whether the script at `path` defines the flag `name` (absl or
    argparse)."""
    text = _source(path)
    return f'"{name}"' in text or f'"--{name}"' in text


def _check_kfactor(argv):
    from kfactor import cli

    if argv[1:2] in (["--help"], ["help"]):
        return []
    if len(argv) < 2 or argv[1] not in cli.COMMANDS:
        return [f"unknown command {argv[1:2]} (known: {sorted(cli.COMMANDS)})"]
    errors = []
    for name in _flag_names(argv[2:]):
        bare = name[2:] if name.startswith("no") else name
        if name != "help" and name not in cli.FLAGS and bare not in cli.FLAGS:
            errors.append(f"unknown flag --{name}")
    return errors


def _check_python(argv):
    if argv[1:2] == ["-c"]:
        return []
    if argv[1:2] == ["-m"]:
        spec = importlib.util.find_spec(argv[2])
        if spec is None or not spec.origin:
            return [f"no module {argv[2]}"]
        path, flags = spec.origin, argv[3:]
    else:
        path = os.path.join(fixtures.REPO_ROOT, argv[1])
        if not os.path.isfile(path):
            return [f"no script {argv[1]}"]
        flags = argv[2:]
    return [
        f"{os.path.relpath(path, fixtures.REPO_ROOT)} defines no --{name}"
        for name in _flag_names(flags)
        if name != "help" and not _defines(path, name)
    ]


def pyproject_extras():
    """The extras of pyproject.toml (its `[project.optional-dependencies]`
    keys; tomllib is not in Python 3.10)."""
    text = _source(os.path.join(fixtures.REPO_ROOT, "pyproject.toml"))
    section = text.split("[project.optional-dependencies]", 1)[1]
    section = re.split(r"^\[", section, maxsplit=1, flags=re.M)[0]
    return set(re.findall(r"^([A-Za-z0-9_-]+) = \[", section, flags=re.M))


def _check_pip(argv):
    extras = pyproject_extras()
    errors = []
    for target in argv[2:]:
        if target.startswith("-") or "==" in target:
            continue
        path, _, rest = target.partition("[")
        for extra in filter(None, rest.rstrip("]").split(",")):
            if extra not in extras:
                errors.append(f"no extra {extra!r} (known: {sorted(extras)})")
        if not os.path.exists(os.path.join(fixtures.REPO_ROOT, path)):
            errors.append(f"no path {path}")
    return errors


def check_command(argv):
    """Why `argv` would not run here (an empty list when it would)."""
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0], re.S):
        argv = argv[1:]  # environment assignments
    if not argv or argv[0] in UNCHECKED_PROGRAMS:
        return []
    program = argv[0]
    if program == "kfactor":
        return _check_kfactor(argv)
    if program in ("python", "python3"):
        return _check_python(argv)
    if program == "pip" and argv[1:2] == ["install"]:
        return _check_pip(argv)
    return [f"unknown program {program!r}: check it or list it as unchecked"]


def test_every_command_names_what_exists():
    errors = []
    for page in DOCS:
        with open(os.path.join(fixtures.REPO_ROOT, page)) as f:
            for line, argv in bash_commands(f.read()):
                errors += [
                    f"{page}:{line}: {shlex.join(argv)}: {error}"
                    for error in check_command(argv)
                ]
    assert not errors, "\n".join(errors)


def test_command_checks_catch_what_is_missing():
    text = "\n".join(
        [
            "```bash",
            "kfactor demo --factor_epochs=1 --nodci   # a comment",
            "kfactor export --tasks=a \\",
            "    --colour=red && python examples/nothing.py",
            'TF_CONFIG=\'{"a":',
            "  1}' python examples/three_seeds.py --seeds=0 --speed=2",
            "pip install -e '.[dev,gpu]'",
            "```",
        ]
    )
    found = [
        (line, error)
        for line, argv in bash_commands(text)
        for error in check_command(argv)
    ]
    assert found == [
        (3, "unknown flag --colour"),
        (3, "no script examples/nothing.py"),
        (5, "examples/three_seeds.py defines no --speed"),
        (7, "no extra 'gpu' (known: ['dev', 'lab', 'serve', 'tune'])"),
    ]


# === Names and links ===

NAME = re.compile(r"(?<![\w/.-])kfactor(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
#: Dotted words that are not Python names: files, placeholders.
NOT_NAMES = ("kfactor.json",)
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def resolve(name):
    """The object a dotted `kfactor...` name denotes (AttributeError or
    ModuleNotFoundError when there is none)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[end:]:
            value = getattr(value, attribute)
        return value
    raise ModuleNotFoundError(name)


def test_every_kfactor_name_in_the_docs_exists():
    missing = []
    for page in DOCS:
        with open(os.path.join(fixtures.REPO_ROOT, page)) as f:
            names = set(NAME.findall(f.read())) - set(NOT_NAMES)
        for name in sorted(names):
            try:
                resolve(name)
            except (AttributeError, ModuleNotFoundError) as error:
                missing.append(f"{page}: {name} ({error})")
    assert not missing, "\n".join(missing)


def github_anchors(text):
    """The `#anchors` GitHub gives the headings of a markdown text."""
    anchors, seen, fenced = set(), {}, False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = re.match(r"#{1,6} (.+)", line)
        if fenced or not match:
            continue
        title = match[1].strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_every_relative_link_resolves():
    broken = []
    for page in DOCS:
        path = os.path.join(fixtures.REPO_ROOT, page)
        text = _source(path)
        for match in LINK.finditer(text):
            target = match["target"]
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            linked = os.path.normpath(
                os.path.join(os.path.dirname(path), file) if file else path
            )
            if not os.path.exists(linked):
                broken.append(f"{page}: {target} (no {file})")
            elif anchor and linked.endswith(".md"):
                if anchor not in github_anchors(_source(linked)):
                    broken.append(f"{page}: {target} (no heading #{anchor})")
    assert not broken, "\n".join(broken)


def test_readme_imports_load_a_saved_teacher_in_a_fresh_process(tmp_path):
    """The test process has registered kfactor's layers long ago; a user's
    process has only what the README's snippet imports."""
    teacher = narrow_teacher({"shape": 3})
    teacher.save(tmp_path / "teacher.keras")
    with open(os.path.join(fixtures.REPO_ROOT, "README.md")) as f:
        code = python_snippets(f.read())[0][1]
    imports = [line for line in code.splitlines() if line.startswith("import")]
    path = str(tmp_path / "teacher.keras")
    program = "\n".join([*imports, f"keras.saving.load_model({path!r})"])
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=fixtures.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
