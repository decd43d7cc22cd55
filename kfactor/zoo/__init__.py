"""Encoders and teachers: SimpleConv64, Wide ResNet, CIFAR ResNet-18 and
MobileNetV2, keras.applications."""

from kfactor.zoo import applications
from kfactor.zoo import cifar
from kfactor.zoo import simple_conv
from kfactor.zoo import wrn
from kfactor.zoo.applications import applications_encoder
from kfactor.zoo.applications import as_task_teacher
from kfactor.zoo.applications import stage_layer_names
from kfactor.zoo.cifar import mobilenet_v2_cifar
from kfactor.zoo.cifar import resnet18_cifar
from kfactor.zoo.simple_conv import FULL_WIDTHS
from kfactor.zoo.simple_conv import NARROW_WIDTHS
from kfactor.zoo.simple_conv import copy_weights_by_name
from kfactor.zoo.simple_conv import multitask_teacher
from kfactor.zoo.simple_conv import simple_conv64
from kfactor.zoo.wrn import wide_resnet

__all__ = [
    "FULL_WIDTHS",
    "NARROW_WIDTHS",
    "applications",
    "applications_encoder",
    "as_task_teacher",
    "cifar",
    "copy_weights_by_name",
    "mobilenet_v2_cifar",
    "multitask_teacher",
    "resnet18_cifar",
    "simple_conv",
    "simple_conv64",
    "stage_layer_names",
    "wide_resnet",
    "wrn",
]
