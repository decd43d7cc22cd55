"""The realistic workload in PyTorch: WRN-28-2 into ResNet-18 + MobileNetV2.

The same computation as `realistic.py`'s `kfactor.Factorizer` (no TF here):
a frozen WRN-28-2 teacher (BatchNorm in eval mode, under no_grad) with a
linear head a task; a ResNet-18-CIFAR common factor; one MobileNetV2-CIFAR
x0.5 task factor a task (encoder, Gaussian code layer `2 * 512`, head on
`z_common + z_task`, auxiliary head on `z_task`); three InfoMax levels
(teacher stages `stage1_out, stage2_out, final_relu` against common stages
`layer2_out, layer3_out, layer4_out`, each global-average-pooled, the
teacher's through a `Linear-BN-ReLU-Linear` projection); InfoNCE (cosine,
temperature 0.1), soft-target KD (T 10, weight 0.1), label-smoothed CE of
both heads, per-sample KL (beta 1e-3); Adam with coupled weight decay 1e-4.

Every layer is a module named like its Keras twin (`load_keras_weights`
copies Keras weights in, for the same-loss test). Convolutions pad
symmetrically (PyTorch's `padding=1`, what a PyTorch user writes) unless
`tf_padding=True`, which pads stride-2 3x3 convolutions as TensorFlow's
`"same"` does (one row and column, bottom-right): the same FLOPs either way.

Step variants (`STEP_VARIANTS`): eager, channels_last, torch.compile of the
forward and losses, both; each with PyTorch's fused CPU Adam, and eager and
channels_last also with its default (foreach) Adam. Inference variants
(`INFERENCE_VARIANTS`): eager, channels_last, inductor (`torch.compile`),
and inductor with freezing (`torch._inductor.config.freezing`: weights as
constants, batch normalization folded into the convolutions), under
`torch.inference_mode`.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.realistic_config import BETA
from benchmarks.realistic_config import INFERENCE_VARIANTS
from benchmarks.realistic_config import KD_TEMPERATURE
from benchmarks.realistic_config import KD_WEIGHT
from benchmarks.realistic_config import LABEL_SMOOTHING
from benchmarks.realistic_config import LEARNING_RATE
from benchmarks.realistic_config import MOBILENET_V2_STAGES
from benchmarks.realistic_config import SIZES
from benchmarks.realistic_config import STEP_VARIANTS
from benchmarks.realistic_config import TASK_CLASSES
from benchmarks.realistic_config import TEMPERATURE
from benchmarks.realistic_config import WEIGHT_DECAY

# === Layers ===


class Conv(nn.Conv2d):
    """A bias-free convolution padded like Keras's `"same"` (see module)."""

    def __init__(self, cin, cout, k, stride, groups=1, tf_padding=False):
        self.tf_pad = tf_padding and stride == 2 and k == 3
        padding = 0 if self.tf_pad else k // 2
        super().__init__(
            cin, cout, k, stride, padding, groups=groups, bias=False
        )

    def forward(self, x):
        if self.tf_pad:
            x = F.pad(x, (0, 1, 0, 1))
        return super().forward(x)


def _bn(channels):
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


def _gap(x):
    return x.mean((2, 3))


class Named(nn.Module):
    """Layers in a `ModuleDict` keyed by their Keras names."""

    def __init__(self, tf_padding):
        super().__init__()
        self.layer = nn.ModuleDict()
        self.tf_padding = tf_padding

    def conv(self, name, cin, cout, k, stride, groups=1):
        self.layer[name] = Conv(cin, cout, k, stride, groups, self.tf_padding)

    def bn(self, name, channels):
        self.layer[name] = _bn(channels)

    def run(self, name, x):
        return self.layer[name](x)


class WideResNet(Named):
    """`kfactor.zoo.wide_resnet(depth, width, include_top=False,
    pooling="avg")`: returns `(pooled, [stage1, stage2, final] maps)`."""

    def __init__(self, depth, width, tf_padding=False):
        super().__init__(tf_padding)
        self.blocks = []
        self.conv("stem_conv", 3, 16, 3, 1)
        cin, count = 16, (depth - 4) // 6
        for stage, filters in enumerate((16 * width, 32 * width, 64 * width)):
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                last = index == count - 1
                name = f"stage{stage + 1}" + (
                    "" if last else f"_block{index + 1}"
                )
                self.bn(f"{name}_1_bn", cin)
                shortcut = stride != 1 or cin != filters
                if shortcut:
                    self.conv(f"{name}_shortcut", cin, filters, 1, stride)
                self.conv(f"{name}_conv1", cin, filters, 3, stride)
                self.bn(f"{name}_2_bn", filters)
                self.conv(f"{name}_conv2", filters, filters, 3, 1)
                self.blocks.append((name, shortcut))
                cin = filters
        self.bn("final_bn", cin)
        self.features = cin

    def forward(self, x):
        x = self.run("stem_conv", x)
        stages = []
        for name, shortcut in self.blocks:
            act = F.leaky_relu(self.run(f"{name}_1_bn", x), 0.1)
            skip = self.run(f"{name}_shortcut", act) if shortcut else x
            y = self.run(f"{name}_conv1", act)
            y = F.leaky_relu(self.run(f"{name}_2_bn", y), 0.1)
            x = skip + self.run(f"{name}_conv2", y)
            if not name.split("_")[-1].startswith("block"):
                stages.append(x)
        x = F.leaky_relu(self.run("final_bn", x), 0.1)
        return _gap(x), [stages[0], stages[1], x]


class ResNetCifar(Named):
    """`kfactor.zoo.resnet18_cifar`: `(pooled, [layer2..4 maps])`."""

    def __init__(self, widths, blocks, tf_padding=False):
        super().__init__(tf_padding)
        self.conv("stem_conv", 3, widths[0], 3, 1)
        self.bn("stem_bn", widths[0])
        self.blocks, cin = [], widths[0]
        for stage, (filters, count) in enumerate(zip(widths, blocks)):
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                last = index == count - 1
                name = f"layer{stage + 1}" + ("" if last else f"_block{index}")
                self.conv(f"{name}_conv1", cin, filters, 3, stride)
                self.bn(f"{name}_bn1", filters)
                self.conv(f"{name}_conv2", filters, filters, 3, 1)
                self.bn(f"{name}_bn2", filters)
                shortcut = stride != 1 or cin != filters
                if shortcut:
                    self.conv(f"{name}_shortcut_conv", cin, filters, 1, stride)
                    self.bn(f"{name}_shortcut_bn", filters)
                self.blocks.append((name, shortcut, last and stage > 0))
                cin = filters
        self.features = cin

    def forward(self, x):
        x = F.relu(self.run("stem_bn", self.run("stem_conv", x)))
        stages = []
        for name, shortcut, tapped in self.blocks:
            y = F.relu(self.run(f"{name}_bn1", self.run(f"{name}_conv1", x)))
            y = self.run(f"{name}_bn2", self.run(f"{name}_conv2", y))
            if shortcut:
                x = self.run(f"{name}_shortcut_conv", x)
                x = self.run(f"{name}_shortcut_bn", x)
            x = F.relu(x + y)
            if tapped:
                stages.append(x)
        return _gap(x), stages


def _divisible(value, divisor=8):
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class MobileNetV2Cifar(Named):
    """`kfactor.zoo.mobilenet_v2_cifar`: pooled `[batch, last]` features."""

    def __init__(self, alpha, last, stages=None, tf_padding=False):
        super().__init__(tf_padding)
        stages = stages or MOBILENET_V2_STAGES
        cin = _divisible(32 * alpha)
        self.conv("stem_conv", 3, cin, 3, 1)
        self.bn("stem_bn", cin)
        self.blocks, block = [], 0
        for expansion, channels, count, stride in stages:
            for index in range(count):
                name, cout = f"block{block}", _divisible(channels * alpha)
                stride_k = stride if index == 0 else 1
                hidden = cin * expansion
                if expansion != 1:
                    self.conv(f"{name}_expand", cin, hidden, 1, 1)
                    self.bn(f"{name}_expand_bn", hidden)
                self.conv(
                    f"{name}_depthwise", hidden, hidden, 3, stride_k, hidden
                )
                self.bn(f"{name}_depthwise_bn", hidden)
                self.conv(f"{name}_project", hidden, cout, 1, 1)
                self.bn(f"{name}_project_bn", cout)
                residual = stride_k == 1 and cin == cout
                self.blocks.append((name, expansion != 1, residual))
                cin, block = cout, block + 1
        self.conv("head_conv", cin, last, 1, 1)
        self.bn("head_bn", last)
        self.features = last

    def forward(self, x):
        x = F.relu6(self.run("stem_bn", self.run("stem_conv", x)))
        for name, expand, residual in self.blocks:
            y = x
            if expand:
                y = self.run(f"{name}_expand", y)
                y = F.relu6(self.run(f"{name}_expand_bn", y))
            y = F.relu6(
                self.run(
                    f"{name}_depthwise_bn", self.run(f"{name}_depthwise", y)
                )
            )
            y = self.run(f"{name}_project_bn", self.run(f"{name}_project", y))
            x = x + y if residual else y
        x = F.relu6(self.run("head_bn", self.run("head_conv", x)))
        return _gap(x)


def _head(cin, cout):
    return nn.Linear(cin, cout)


class Projection(nn.Module):
    """`kfactor`'s `ProjectionMLP`: Linear, BatchNorm1d, ReLU, Linear."""

    def __init__(self, cin, units):
        super().__init__()
        self.hidden = nn.Linear(cin, units)
        self.norm = nn.BatchNorm1d(units, eps=1e-5, momentum=0.1)
        self.out = nn.Linear(units, units)

    def forward(self, x):
        return self.out(F.relu(self.norm(self.hidden(x))))


class Teacher(nn.Module):
    def __init__(self, size, tf_padding=False):
        super().__init__()
        self.encoder = WideResNet(*SIZES[size]["wrn"], tf_padding)
        dim = self.encoder.features
        self.heads = nn.ModuleDict(
            {t: _head(dim, k) for t, k in TASK_CLASSES.items()}
        )

    def forward(self, images):
        latent, stages = self.encoder(images)
        logits = {t: head(latent) for t, head in self.heads.items()}
        return logits, [_gap(s) for s in stages]


class TaskFactor(nn.Module):
    def __init__(self, size, code_dim, classes, tf_padding=False):
        super().__init__()
        alpha, last, stages = SIZES[size]["mobilenet"]
        self.encoder = MobileNetV2Cifar(alpha, last, stages, tf_padding)
        self.code = nn.Linear(last, 2 * code_dim)
        self.head = _head(code_dim, classes)
        self.aux_head = _head(code_dim, classes)

    def encode(self, images):
        return self.code(self.encoder(images)).chunk(2, dim=1)


class Student(nn.Module):
    """Common ResNet, task MobileNets, one InfoMax projection a level."""

    def __init__(self, size, tf_padding=False):
        super().__init__()
        self.common = ResNetCifar(*SIZES[size]["resnet"], tf_padding)
        code_dim = self.common.features
        self.tasks = nn.ModuleDict(
            {
                t: TaskFactor(size, code_dim, k, tf_padding)
                for t, k in TASK_CLASSES.items()
            }
        )
        depth, width = SIZES[size]["wrn"]
        teacher_dims = (16 * width, 32 * width, 64 * width)
        widths = SIZES[size]["resnet"][0]
        self.projections = nn.ModuleList(
            Projection(dt, dc) for dt, dc in zip(teacher_dims, widths[1:])
        )


# === Loss ===


def info_nce(a, b, temperature=TEMPERATURE):
    a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
    b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
    scores = a @ b.t() / temperature
    target = torch.arange(scores.shape[0], device=scores.device)
    return F.cross_entropy(scores, target) - math.log(scores.shape[0])


def soft_target_kd(student, teacher, t=KD_TEMPERATURE):
    log_p = F.log_softmax(teacher / t, dim=1)
    log_q = F.log_softmax(student / t, dim=1)
    return t * t * (log_p.exp() * (log_p - log_q)).sum(1).mean()


def gaussian_kl(mean, log_var):
    kl = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(1)
    return kl.mean()


def factorization_loss(teacher, student, images, labels, sample=True):
    """The IMB objective of one batch; `labels` a dict task -> `[batch]`.

    `sample=False` uses the code means (kfactor's `training=False`).
    """
    with torch.no_grad():
        teacher_logits, teacher_features = teacher(images)
    code, stages = student.common(images)
    common_features = [_gap(s) for s in stages]
    infomax = torch.stack(
        [
            info_nce(projection(t), c)
            for projection, t, c in zip(
                student.projections, teacher_features, common_features
            )
        ]
    ).mean()
    kl, kd, cls, aux = 0.0, 0.0, 0.0, 0.0
    for task, factor in student.tasks.items():
        mean, log_var = factor.encode(images)
        z = mean
        if sample:
            z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        logits = factor.head(code + z)
        y = labels[task]
        cls = cls + F.cross_entropy(logits, y, label_smoothing=LABEL_SMOOTHING)
        aux = aux + F.cross_entropy(
            factor.aux_head(z), y, label_smoothing=LABEL_SMOOTHING
        )
        kl = kl + gaussian_kl(mean, log_var)
        kd = kd + soft_target_kd(logits, teacher_logits[task])
    return infomax + BETA * kl + KD_WEIGHT * kd + cls + aux


# === Steps ===


def models(size="full", tf_padding=False):
    """`(teacher, student)`: the teacher frozen in eval mode."""
    teacher = Teacher(size, tf_padding).eval().requires_grad_(False)
    return teacher, Student(size, tf_padding).train()


def _channels_last(modules, batches):
    for module in modules:
        module.to(memory_format=torch.channels_last)
    fmt = torch.channels_last
    return [(x.contiguous(memory_format=fmt), y) for x, y in batches]


def factorization_step(size, batches, variant="eager"):
    """`(step, batches)`: the realistic step of a `STEP_VARIANTS` variant."""
    if variant not in STEP_VARIANTS:
        raise ValueError(
            f"Expected a variant in {STEP_VARIANTS}. Received: {variant!r}"
        )
    teacher, student = models(size)
    if "channels_last" in variant:
        batches = _channels_last([teacher, student], batches)

    def loss_fn(images, labels):
        return factorization_loss(teacher, student, images, labels)

    if variant.startswith("compile"):
        loss_fn = torch.compile(loss_fn)
    optimizer = torch.optim.Adam(
        student.parameters(),
        lr=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        fused=not variant.endswith("foreach"),
    )

    def step(images, labels):
        loss = loss_fn(images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step, batches


# === Inference ===


def assembled_forward(teacher_free_student, tasks=None, standalone=False):
    """`forward(images)`: logits of every task from the code means.

    Assembled: the common factor once; standalone: once a task (N factor
    networks).
    """
    student = teacher_free_student
    tasks = list(tasks or student.tasks)

    def forward(images):
        common = None if standalone else student.common(images)[0]
        outputs = {}
        for task in tasks:
            factor = student.tasks[task]
            shared = student.common(images)[0] if standalone else common
            outputs[task] = factor.head(shared + factor.encode(images)[0])
        return outputs

    return forward


def _compiled(forward, images, freezing):
    """`torch.compile(forward)`, compiled now on `images`, with inductor's
    freezing on or off.

    Freezing makes the weights constants of the compiled graph, so that
    inductor folds batch normalization into the convolutions (as kfactor's
    assembly does). Inductor reads the setting when a graph compiles, and
    Dynamo's cache does not key on it: each setting traces its own function
    (a cache entry of one is never handed to the other), compiled here
    while the setting holds.
    """

    def frozen(x):
        return forward(x)

    def unfrozen(x):
        return forward(x)

    compiled = torch.compile(frozen if freezing else unfrozen, dynamic=False)
    previous = torch._inductor.config.freezing
    torch._inductor.config.freezing = freezing
    try:
        with torch.inference_mode():
            compiled(images)
    finally:
        torch._inductor.config.freezing = previous
    return compiled


def inference_variant(module, forward, images, variant):
    """`(fn, images)`: `forward` under inference mode, in `variant`."""
    if variant not in INFERENCE_VARIANTS:
        raise ValueError(
            f"Expected a variant in {INFERENCE_VARIANTS}. Received: {variant!r}"
        )
    module.eval()
    if variant == "channels_last":
        module.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    if variant.startswith("inductor"):
        forward = _compiled(forward, images, variant == "inductor_frozen")

    def fn(x):
        with torch.inference_mode():
            return forward(x)

    return fn, images


# === Data and weights ===


def random_batches(count, batch_size, size="full", seed=0):
    """`count` batches of uniform [0, 1] NCHW images and labels a task."""
    generator = torch.Generator().manual_seed(seed)
    side = SIZES[size]["image"]
    batches = []
    for _ in range(count):
        images = torch.rand((batch_size, 3, side, side), generator=generator)
        labels = {
            t: torch.randint(0, k, (batch_size,), generator=generator)
            for t, k in TASK_CLASSES.items()
        }
        batches.append((images, labels))
    return batches


def _copy(module, weights):
    """Copies one Keras layer's `get_weights()` into a module."""
    tensors = [torch.as_tensor(w) for w in weights]
    with torch.no_grad():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            gamma, beta, mean, var = tensors
            for target, value in zip(
                (module.weight, module.bias, module.running_mean),
                (gamma, beta, mean),
            ):
                target.copy_(value)
            module.running_var.copy_(var)
        elif isinstance(module, nn.Conv2d):
            kernel = tensors[0]
            if module.groups > 1:  # Keras depthwise: (kh, kw, c, 1)
                module.weight.copy_(kernel.permute(2, 3, 0, 1))
            else:  # (kh, kw, cin, cout)
                module.weight.copy_(kernel.permute(3, 2, 0, 1))
        elif isinstance(module, nn.Linear):
            module.weight.copy_(tensors[0].t())
            module.bias.copy_(tensors[1])
        else:
            raise TypeError(f"Cannot copy Keras weights into {module}")


def load_keras_weights(model, layers):
    """Copies `{keras layer name: get_weights()}` into a `Named` network.

    Returns the names copied; raises if one of `model`'s layers has none.
    """
    missing = sorted(set(model.layer) - set(layers))
    if missing:
        raise KeyError(f"No Keras weights for {missing}")
    for name, module in model.layer.items():
        _copy(module, layers[name])
    return sorted(model.layer)


def copy_linear(module, weights):
    """Copies a Keras Dense layer's or `ProjectionMLP`'s weights."""
    if isinstance(module, Projection):
        _copy(module.hidden, weights[:2])
        _copy(module.norm, weights[2:6])
        _copy(module.out, weights[6:])
    else:
        _copy(module, weights)
