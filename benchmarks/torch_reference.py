"""The benchmarked steps in PyTorch, written from the method (no TF here).

The same computation as kfactor's benchmark items (`models.py`): the demo's
dSprites teacher and factorizer at full or narrow SimpleConv64 widths,
latent 10, five tasks, batch-normalized encoders, fp32.

- teacher step: SimpleConv64 (+ BatchNorm) and a linear head a task, sum of
  the per-task CE weighted 1 / log K (`kfactor.lab.teacher`), Adam;
- factorization step: the frozen teacher's forward (inference BatchNorm),
  a common encoder and 5 Gaussian task factors (encoder, code layer
  `2 * latent`, head on `z_common + z_task`, auxiliary head on `z_task`),
  the InfoMax projection MLP; InfoNCE (cosine, temperature 0.1), logit-MSE
  KD (0.1), label-smoothed CE of both heads, per-sample KL (beta 1e-3);
  Adam with coupled weight decay 1e-4;
- Adam is PyTorch's fused CPU kernel (`fused=True`: 4.0 ms a step over 130
  64x64x4x4 tensors where the default for-loop takes 12.2 and `foreach`
  47.6, measured on a 2-core AMD EPYC with AVX-512), as kfactor's steps run
  `kfactor.FusedAdam`;
- inference: the assembled 5-task network (common encoder once) and the 5
  standalone factor networks, under `torch.inference_mode`.

Each step comes in the variants a PyTorch user would try (`VARIANTS`):
eager, `channels_last` memory format, `torch.compile` (inductor) of the
forward and losses (backward through AOTAutograd), and both. The
factorization step also comes split into cumulative phases (`PHASES`,
`factorization_phases`: teacher, forward, loss, gradients, step), to see
where its time goes against kfactor's (`phases.py`).

    python -m benchmarks.torch_reference   # prints images/s of each step
"""

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

TASK_CLASSES = {"shape": 3, "scale": 6, "orientation": 40}
TASK_CLASSES.update({"pos_x": 32, "pos_y": 32})
WIDTHS = {
    "full": (32, 32, 64, 128, 256, 256),
    "narrow": (16, 16, 32, 32, 64, 64),
}
LATENT = 10
VARIANTS = ("eager", "channels_last", "compile", "compile_channels_last")
PHASES = ("teacher", "forward", "loss", "gradients", "step")
LABEL_SMOOTHING = 0.1 / 1.1
TEMPERATURE = 0.1
KD_WEIGHT = 0.1
BETA = 1e-3
LEARNING_RATE = 1e-4
WEIGHT_DECAY = 1e-4


# === Models ===


def encoder(widths, out_dim=None):
    """SimpleConv64: six k=4 s=2 p=1 conv + BatchNorm + ReLU, flatten, linear.

    `out_dim=None` ends at the flattened features (a task factor's encoder).
    """
    layers, channels = [], 1
    for width in widths:
        layers += [
            nn.Conv2d(channels, width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width, momentum=0.01, eps=1e-3),
            nn.ReLU(inplace=True),
        ]
        channels = width
    layers.append(nn.Flatten())
    if out_dim is not None:
        layers.append(nn.Linear(channels, out_dim))
    return nn.Sequential(*layers)


def heads(in_dim):
    """A linear head a task."""
    return nn.ModuleList(nn.Linear(in_dim, k) for k in TASK_CLASSES.values())


class Teacher(nn.Module):
    """Multi-task teacher: encoder to the latent, a head a task."""

    def __init__(self, widths):
        super().__init__()
        self.encoder = encoder(widths, LATENT)
        self.heads = heads(LATENT)

    def forward(self, images):
        latent = self.encoder(images * 2.0 - 1.0)
        return latent, [head(latent) for head in self.heads]


class TaskFactor(nn.Module):
    """Encoder, Gaussian code layer, head and auxiliary head of one task."""

    def __init__(self, widths, num_classes):
        super().__init__()
        self.encoder = encoder(widths)
        self.code = nn.Linear(widths[-1], 2 * LATENT)
        self.head = nn.Linear(LATENT, num_classes)
        self.aux_head = nn.Linear(LATENT, num_classes)

    def encode(self, images):
        """`(mean, log_var)` of the task code."""
        return self.code(self.encoder(images)).chunk(2, dim=1)


class Student(nn.Module):
    """Common encoder, 5 task factors and the InfoMax projection."""

    def __init__(self, widths):
        super().__init__()
        self.common = encoder(widths, LATENT)
        self.tasks = nn.ModuleList(
            TaskFactor(widths, k) for k in TASK_CLASSES.values()
        )
        self.projection = nn.Sequential(
            nn.Linear(LATENT, LATENT),
            nn.BatchNorm1d(LATENT),
            nn.ReLU(),
            nn.Linear(LATENT, LATENT),
        )


# === Losses ===


def info_nce(a, b, temperature=TEMPERATURE):
    """InfoNCE of paired rows of `a` and `b` (cosine critic), a loss."""
    scores = F.normalize(a, dim=1) @ F.normalize(b, dim=1).t() / temperature
    target = torch.arange(scores.shape[0], device=scores.device)
    return F.cross_entropy(scores, target) - math.log(scores.shape[0])


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, 1)), summed over dims, batch mean."""
    kl = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(1)
    return kl.mean()


def factorization_forward(teacher, student, images):
    """Every network's outputs of one batch (the teacher under no_grad).

    A dict: `teacher_logits` (a list, one a task), `projected` (the
    InfoMax projection of the teacher's latent), `common`, and a list a
    task of `mean`, `log_var`, `logits` and `aux_logits`.
    """
    with torch.no_grad():
        teacher_latent, teacher_logits = teacher(images)
    x = images * 2.0 - 1.0
    common = student.common(x)
    outputs = {"teacher_logits": teacher_logits, "common": common}
    outputs["projected"] = student.projection(teacher_latent)
    for name in ("mean", "log_var", "logits", "aux_logits"):
        outputs[name] = []
    for factor in student.tasks:
        mean, log_var = factor.encode(x)
        code = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        outputs["mean"].append(mean)
        outputs["log_var"].append(log_var)
        outputs["logits"].append(factor.head(common + code))
        outputs["aux_logits"].append(factor.aux_head(code))
    return outputs


def factorization_objective(outputs, labels):
    """The factorization objective of `factorization_forward`'s outputs."""
    infomax = info_nce(outputs["projected"], outputs["common"])
    cls, aux, kl = 0.0, 0.0, 0.0
    smooth = LABEL_SMOOTHING
    for k in range(len(TASK_CLASSES)):
        cls = cls + F.cross_entropy(
            outputs["logits"][k], labels[:, k], label_smoothing=smooth
        )
        aux = aux + F.cross_entropy(
            outputs["aux_logits"][k], labels[:, k], label_smoothing=smooth
        )
        kl = kl + gaussian_kl(outputs["mean"][k], outputs["log_var"][k])
    kd = F.mse_loss(
        torch.cat(outputs["logits"], 1), torch.cat(outputs["teacher_logits"], 1)
    )
    return infomax + KD_WEIGHT * kd + cls + aux + BETA * kl


def factorization_loss(teacher, student, images, labels):
    """The factorization objective of one batch (teacher under no_grad)."""
    outputs = factorization_forward(teacher, student, images)
    return factorization_objective(outputs, labels)


def teacher_loss(teacher, images, labels):
    """Sum of the per-task CE, each weighted 1 / log K."""
    _, logits = teacher(images)
    weights = [1.0 / math.log(k) for k in TASK_CLASSES.values()]
    return sum(
        w * F.cross_entropy(lg, labels[:, k])
        for k, (w, lg) in enumerate(zip(weights, logits))
    )


# === Steps ===


def _check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(
            f"Expected a variant in {VARIANTS}. Received: {variant!r}"
        )


def _prepare(modules, batches, variant):
    """Moves modules and images to the variant's memory format."""
    if "channels_last" not in variant:
        return batches
    for module in modules:
        module.to(memory_format=torch.channels_last)
    fmt = torch.channels_last
    return [(x.contiguous(memory_format=fmt), y) for x, y in batches]


def _compiled(function, variant):
    """`function`, compiled with `torch.compile` in the compile variants."""
    if variant.startswith("compile"):
        return torch.compile(function)
    return function


def _adam_step(loss_fn, parameters):
    """`step(images, labels)`: loss, backward, Adam."""
    optimizer = torch.optim.Adam(
        parameters, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY, fused=True
    )

    def step(images, labels):
        loss = loss_fn(images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def _train_step(loss_fn, parameters, variant):
    """`step(images, labels)`: loss, backward, Adam (compiled if asked)."""
    return _adam_step(_compiled(loss_fn, variant), parameters)


def factorization_models(width, batches, variant="eager"):
    """`(teacher, student, batches)` of the factorization step: the teacher
    frozen (inference mode), the student training, both and the images in
    the variant's memory format."""
    _check_variant(variant)
    teacher, student = Teacher(WIDTHS[width]), Student(WIDTHS[width])
    teacher.eval().requires_grad_(False)
    student.train()
    batches = _prepare([teacher, student], batches, variant)
    return teacher, student, batches


def factorization_phases(teacher, student, variant="eager"):
    """The factorization step's cumulative phases, `{phase: fn(images,
    labels)}` in `PHASES` order (compiled in the compile variants):

    - `teacher`: the frozen teacher's forward under no_grad;
    - `forward`: + the student's forward (autograd records it), no loss;
    - `loss`: + the objective, the scalar loss;
    - `gradients`: + zero_grad and `loss.backward()` (not applied);
    - `step`: the full step, `factorization_step`'s.

    In the compile variants, teacher, forward and loss are three compiled
    graphs (gradients and step reuse the loss's): inductor fuses each on its
    own, and samples its own random codes (not eager's stream), so their
    differences are less strictly "what a phase adds" than eager's.
    """

    def teacher_forward(images, labels):
        with torch.no_grad():
            return teacher(images)

    def forward(images, labels):
        return factorization_forward(teacher, student, images)

    def loss_fn(images, labels):
        return factorization_loss(teacher, student, images, labels)

    loss_fn = _compiled(loss_fn, variant)

    def gradients(images, labels):
        loss = loss_fn(images, labels)
        student.zero_grad(set_to_none=True)
        loss.backward()
        return loss.detach()

    return {
        "teacher": _compiled(teacher_forward, variant),
        "forward": _compiled(forward, variant),
        "loss": loss_fn,
        "gradients": gradients,
        "step": _adam_step(loss_fn, student.parameters()),
    }


def factorization_step(width, batches, variant="eager"):
    """`(step, batches)`: the factorization step of a variant at `width`."""
    teacher, student, batches = factorization_models(width, batches, variant)
    return factorization_phases(teacher, student, variant)["step"], batches


def teacher_step(width, batches, variant="eager"):
    """`(step, batches)`: the teacher's training step of a variant."""
    _check_variant(variant)
    teacher = Teacher(WIDTHS[width]).train()
    batches = _prepare([teacher], batches, variant)

    def loss_fn(images, labels):
        return teacher_loss(teacher, images, labels)

    return _train_step(loss_fn, teacher.parameters(), variant), batches


def _factor_logits(student, k, x, common):
    factor = student.tasks[k]
    mean, _ = factor.encode(x)
    return factor.head(common + mean)


def inference_forward(student, assembled=True):
    """`forward(images)`: 5-task logits of `student`'s factor networks,
    assembled (the common encoder once) or standalone (once a task)."""
    tasks = range(len(TASK_CLASSES))

    def forward(images):
        x = images * 2.0 - 1.0
        if assembled:
            common = student.common(x)
            return [_factor_logits(student, k, x, common) for k in tasks]
        return [_factor_logits(student, k, x, student.common(x)) for k in tasks]

    return forward


def inference(width, assembled=True):
    """`forward(images)`: 5-task logits, assembled or 5 standalone networks
    (eager, under `torch.inference_mode`)."""
    student = Student(WIDTHS[width]).eval()
    return torch.inference_mode()(inference_forward(student, assembled))


# === Data ===


def random_batches(count, batch_size, seed=0):
    """`count` batches of random binary [0, 1] images and labels, NCHW."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        images = torch.randint(
            0, 2, (batch_size, 1, 64, 64), generator=generator
        ).float()
        labels = torch.stack(
            [
                torch.randint(0, k, (batch_size,), generator=generator)
                for k in TASK_CLASSES.values()
            ],
            1,
        )
        batches.append((images, labels))
    return batches


def main(batch_size=128, calls=5):
    """Prints images/s of each step, width and variant (a quick look)."""
    torch.manual_seed(0)
    batches = random_batches(4, batch_size)
    for width in WIDTHS:
        for build in (factorization_step, teacher_step):
            for variant in VARIANTS:
                step, data = build(width, batches, variant)
                step(*data[0])  # warm-up (and compile)
                start = time.perf_counter()
                for index in range(calls):
                    step(*data[index % len(data)])
                rate = calls * batch_size / (time.perf_counter() - start)
                print(f"{build.__name__} {width} {variant}: {rate:,.0f} img/s")


if __name__ == "__main__":
    main()
