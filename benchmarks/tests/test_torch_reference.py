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


def _phases(variant="eager"):
    batches = torch_reference.random_batches(1, 8)
    teacher, student, data = torch_reference.factorization_models(
        "narrow", batches, variant
    )
    phases = torch_reference.factorization_phases(teacher, student, variant)
    return phases, teacher, student, data[0]


@pytest.mark.parametrize("variant", ["eager", "channels_last"])
def test_loss_phase_is_the_factorization_loss(variant):
    phases, teacher, student, (images, labels) = _phases(variant)
    assert list(phases) == list(torch_reference.PHASES)
    torch.manual_seed(1)  # the same code samples
    loss = phases["loss"](images, labels)
    torch.manual_seed(1)
    expected = torch_reference.factorization_loss(
        teacher, student, images, labels
    )
    assert float(loss.detach()) == float(expected.detach())


def test_phases_add_gradients_then_the_update():
    phases, _, student, (images, labels) = _phases()
    latent, logits = phases["teacher"](images, labels)
    assert not latent.requires_grad
    assert len(logits) == len(torch_reference.TASK_CLASSES)
    outputs = phases["forward"](images, labels)
    assert outputs["common"].requires_grad
    weights = [p.detach().clone() for p in student.parameters()]
    phases["gradients"](images, labels)
    assert all(p.grad is not None for p in student.parameters())
    for p, before in zip(student.parameters(), weights):
        torch.testing.assert_close(p.detach(), before)  # not applied
    phases["step"](images, labels)
    moved = [
        not torch.equal(p.detach(), before)
        for p, before in zip(student.parameters(), weights)
    ]
    assert all(moved)


def test_worker_names_the_phases_for_pairing():
    from benchmarks import worker_torch

    spec = {"kind": "phase", "width": "narrow", "variant": "channels_last"}
    items = worker_torch.build_items([spec], batch_size=4)
    assert [item.name for item in items] == [
        f"phase/narrow/torch_channels_last/{phase}"
        for phase in torch_reference.PHASES
    ]
    items[0].run(1)
