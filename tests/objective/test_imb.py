"""`imb_objective`'s renamed options and their deprecated aliases.

`cls_weight` -> `factor_head_weight` (the factor networks' head CE) and
`task_weight` -> `aux_head_weight` (the auxiliary head's CE): the old names
warn (`FutureWarning`) and build the same losses; old and new together are
refused.
"""

import inspect
import warnings

from kfactor.objective import losses
from kfactor.objective.imb import imb_objective

import keras
import pytest

from tests import fixtures

RENAMED = [
    ("cls_weight", "factor_head_weight"),
    ("task_weight", "aux_head_weight"),
]


def configs(objective):
    return [
        (type(loss).__name__, keras.saving.serialize_keras_object(loss))
        for loss in objective
    ]


def test_new_names_weight_their_heads():
    objective = {
        loss.name: loss
        for loss in imb_objective(factor_head_weight=0.5, aux_head_weight=0.25)
    }
    assert isinstance(objective["cls"], losses.TaskLoss)
    assert objective["cls"].weight == 0.5
    assert isinstance(objective["aux"], losses.AuxTaskLoss)
    assert objective["aux"].weight == 0.25


@pytest.mark.parametrize("old,new", RENAMED)
@pytest.mark.parametrize("value", [0.5, 0.0])
def test_old_name_warns_and_builds_the_new_names_losses(old, new, value):
    with pytest.warns(FutureWarning, match=f"{old} is deprecated") as caught:
        from_old = imb_objective(**{old: value})
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"Pass {new}={value!r} instead" in message
    # The warning names the caller's line, not kfactor's.
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_new = imb_objective(**{new: value})
    assert configs(from_old) == configs(from_new)
    assert configs(from_new) != configs(imb_objective())


@pytest.mark.parametrize("old,new", RENAMED)
def test_old_and_new_names_together_are_refused(old, new):
    with pytest.raises(ValueError, match=f"either {new} or .* alias {old}"):
        imb_objective(**{old: 0.5, new: 1.0})


def test_an_old_name_with_its_new_one_given_positionally_is_refused():
    positional = list(inspect.signature(imb_objective).parameters)
    index = positional.index("factor_head_weight")
    defaults = [
        p.default for p in inspect.signature(imb_objective).parameters.values()
    ][: index + 1]
    with pytest.raises(ValueError, match="factor_head_weight \\(positional\\)"):
        imb_objective(*defaults, cls_weight=0.5)


def test_old_names_left_at_none_are_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        objective = imb_objective(cls_weight=None, task_weight=None)
    assert configs(objective) == configs(imb_objective())


def test_signature_lists_new_names_and_the_aliases_keyword_only():
    parameters = inspect.signature(imb_objective).parameters
    assert parameters["factor_head_weight"].default == 1.0
    assert parameters["aux_head_weight"].default == 1.0
    for old, _ in RENAMED:
        assert parameters[old].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[old].default is None


@pytest.fixture(scope="module")
def teacher():
    return fixtures.tiny_teacher()


def loss_weights(factorizer):
    return {loss.name: loss.weight for loss in factorizer.factor_losses}


def test_factorizer_forwards_the_new_names(teacher):
    factorizer = fixtures.tiny_factorizer(
        teacher, factor_head_weight=0.5, aux_head_weight=0.0
    )
    weights = loss_weights(factorizer)
    assert weights["cls"] == 0.5 and "aux" not in weights


def test_factorizer_accepts_an_old_name_with_a_warning(teacher):
    with pytest.warns(FutureWarning, match="Pass aux_head_weight=0.0") as w:
        factorizer = fixtures.tiny_factorizer(teacher, task_weight=0.0)
    assert len(w) == 1
    assert "aux" not in loss_weights(factorizer)
    # Named at the first frame outside kfactor (the tests' fixtures).
    assert w[0].filename == fixtures.__file__


def test_factorizer_refuses_an_old_name_with_its_new_one(teacher):
    with pytest.raises(ValueError, match="alias cls_weight"):
        fixtures.tiny_factorizer(
            teacher, cls_weight=0.5, factor_head_weight=1.0
        )


def test_factorizer_still_names_the_nearest_option_of_a_misspelt_one(teacher):
    with pytest.raises(TypeError, match="Did you mean 'factor_head_weight'"):
        fixtures.tiny_factorizer(teacher, factor_head_weigth=0.5)
