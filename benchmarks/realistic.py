"""The realistic workload: the reference's CIFAR-size models, in kfactor.

A frozen WRN-28-2 teacher with three task heads (`TASK_CLASSES`) on 32x32x3
images, factorized into a ResNet-18-CIFAR common factor and one
MobileNetV2-CIFAR x0.5 task factor a task, through kfactor's public
`Factorizer` with multi-stage InfoMax (teacher `WIDE_RESNET_STAGES` against
common `RESNET18_CIFAR_STAGES`), soft-target KD (T 10, weight 0.1, the
reference CIFAR configs'), the default InfoNCE, VIB and label-smoothed CE,
and `kfactor.FusedAdam` through Keras's train function (what `fit` runs).
`torch_realistic.py` is the same computation in PyTorch.

Images are uniform [0, 1] noise and labels uniform (procedural, made once
and cycled): the speed does not depend on them.

Items: `realistic/{size}/function` (images/s of the step).
"""

import kfactor
from kfactor.training.optimizers import FusedAdam
from kfactor.zoo.cifar import RESNET18_CIFAR_STAGES
from kfactor.zoo.cifar import mobilenet_v2_cifar
from kfactor.zoo.cifar import resnet18_cifar
from kfactor.zoo.simple_conv import multitask_teacher
from kfactor.zoo.wrn import WIDE_RESNET_STAGES
from kfactor.zoo.wrn import wide_resnet

import numpy as np
import tensorflow as tf

from benchmarks import flops
from benchmarks import steps
from benchmarks.protocol import Item
from benchmarks.realistic_config import KD_TEMPERATURE
from benchmarks.realistic_config import KD_WEIGHT
from benchmarks.realistic_config import LEARNING_RATE
from benchmarks.realistic_config import SIZES
from benchmarks.realistic_config import TASK_CLASSES

NUM_CACHED_BATCHES = 2


def image_shape(size):
    side = SIZES[size]["image"]
    return (side, side, 3)


def build_teacher(size="full"):
    depth, width = SIZES[size]["wrn"]
    encoder = wide_resnet(
        depth=depth,
        width=width,
        include_top=False,
        pooling="avg",
        input_shape=image_shape(size),
    )
    return multitask_teacher(TASK_CLASSES, encoder=encoder, name="teacher")


def build_factorizer(size="full", teacher=None, **task_options):
    """The realistic `kfactor.Factorizer` (untrained)."""
    teacher = teacher or build_teacher(size)
    widths, blocks = SIZES[size]["resnet"]
    common = resnet18_cifar(image_shape(size), widths=widths, blocks=blocks)
    alpha, last, stages = SIZES[size]["mobilenet"]
    extra = {} if stages is None else {"stages": stages}
    tasks = {
        task: kfactor.TaskFactor(
            mobilenet_v2_cifar(
                image_shape(size),
                alpha=alpha,
                last_channels=last,
                name=f"mobilenet_{task}",
                **extra,
            ),
            name=f"task_{task}",
            **task_options,
        )
        for task in TASK_CLASSES
    }
    return kfactor.Factorizer(
        teacher,
        common=common,
        tasks=tasks,
        teacher_features=list(WIDE_RESNET_STAGES),
        common_features=list(RESNET18_CIFAR_STAGES),
        kd="soft_target",
        kd_weight=KD_WEIGHT,
        kd_temperature=KD_TEMPERATURE,
    )


def cached_batches(batch_size, size="full", count=NUM_CACHED_BATCHES, seed=0):
    """`count` batches `(images, {task: labels})` of NHWC tensors."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        images = rng.random((batch_size, *image_shape(size)), "float32")
        labels = {
            t: tf.constant(rng.integers(0, k, batch_size), "int32")
            for t, k in TASK_CLASSES.items()
        }
        batches.append((tf.constant(images), labels))
    return batches


def realistic_items(batch_size, size="full"):
    """The realistic factorization step as `fit` runs it."""
    factorizer = build_factorizer(size)
    factorizer.compile(optimizer=FusedAdam(LEARNING_RATE))
    macs = flops.factorization_macs(factorizer)
    meta = {
        "forward_macs_per_image": macs,
        "flops_per_image": flops.factorization_step_flops(macs),
        "parameters": factorizer.count_params(),
        "batch_size": batch_size,
    }
    run = steps.train_loop(factorizer, cached_batches(batch_size, size))
    return [Item(f"realistic/{size}/function", run, batch_size, meta=meta)]
