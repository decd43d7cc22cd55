"""The in-repo PyTorch reference runs (skipped without torch)."""

import math

import pytest

torch = pytest.importorskip("torch")

from benchmarks import torch_reference  # noqa: E402


@pytest.mark.parametrize("variant", ["eager", "channels_last"])
def test_factorization_step_updates_the_student(variant):
    batches = torch_reference.random_batches(1, 8)
    step, data = torch_reference.factorization_step("narrow", batches, variant)
    first = float(step(*data[0]))
    assert math.isfinite(first)
    assert float(step(*data[0])) != first


def test_teacher_step_and_inference_shapes():
    batches = torch_reference.random_batches(1, 8)
    step, data = torch_reference.teacher_step("narrow", batches)
    assert math.isfinite(float(step(*data[0])))
    images = batches[0][0]
    torch.manual_seed(0)
    assembled = torch_reference.inference("narrow", assembled=True)(images)
    torch.manual_seed(0)  # the same weights
    standalone = torch_reference.inference("narrow", assembled=False)(images)
    classes = list(torch_reference.TASK_CLASSES.values())
    assert [t.shape[1] for t in assembled] == classes
    for a, b in zip(assembled, standalone):
        torch.testing.assert_close(a, b)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="Expected a variant"):
        torch_reference.teacher_step("narrow", [], "fast")
