"""kfactor's factorization step in phases (`benchmarks/phases.py`)."""

import math

import pytest

from benchmarks import models
from benchmarks import phases
from benchmarks import report

BATCH = 4


@pytest.fixture(scope="module")
def factorizer():
    return models.build_factorizer("narrow")


def test_items_are_named_to_pair_with_pytorch_and_run(factorizer):
    items = phases.factorizer_phase_items(factorizer, "narrow", BATCH)
    names = [item.name for item in items]
    assert names == [f"phase/narrow/{p}" for p in phases.PHASES]
    for item in items:
        assert report.group_of(item.name) == "phase/narrow"
        assert report.category_of(item.name) == "phase"
        assert item.units_per_call == BATCH
    items[0].run(1)  # the teacher's forward, traced and run


def test_gradients_phase_computes_every_gradient_unapplied(factorizer):
    function = phases.phase_functions(factorizer)["gradients"]
    batch = models.cached_batches(BATCH, count=1)[0]
    before = [v.numpy().copy() for v in factorizer.trainable_variables]
    loss, *grads = function(batch)
    assert math.isfinite(float(loss))
    variables = factorizer.trainable_variables
    assert [g.shape for g in grads] == [v.shape for v in variables]
    assert any(float(abs(g).numpy().max()) > 0 for g in grads)
    for variable, value in zip(variables, before):
        assert (variable.numpy() == value).all()  # not applied
