"""Every ```python snippet of README.md and docs/*.md runs against the code.

The snippets of one page run in order in one namespace (like a doctest of
the page), in a temporary directory, after a cheap setup that gives them the
names they take as given (`train_ds`, `teacher`, ...): tiny data, narrow
networks, one or two batches. A snippet that cannot run here carries, on the
line before its fence, `<!-- docs-test: skip: REASON -->`.
"""

import glob
import os
import re

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
    encoder = kfactor.simple_conv64(10, widths=NARROW_WIDTHS)
    return kfactor.multitask_teacher(tasks, encoder=encoder)


def narrow_factorizer(teacher):
    return kfactor.Factorizer(
        teacher,
        common=kfactor.simple_conv64(10, widths=NARROW_WIDTHS),
        tasks={
            t: kfactor.simple_conv64(None, widths=NARROW_WIDTHS)
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
    if page in ("README.md", "docs/ECOSYSTEM.md"):
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
            my_encoder=kfactor.simple_conv64(None, widths=NARROW_WIDTHS),
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
