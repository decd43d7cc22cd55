"""Keras layers: factor layers, convolution, normalization, teacher reader."""

from kfactor.layers import _legacy  # noqa: F401 (registers 0.1 names)
from kfactor.layers import conv
from kfactor.layers import factor_layers
from kfactor.layers import features
from kfactor.layers import heads
from kfactor.layers import normalization
from kfactor.layers.conv import MatmulConv2D
from kfactor.layers.factor_layers import CommonFactor
from kfactor.layers.factor_layers import ProjectionMLP
from kfactor.layers.factor_layers import TaskCode
from kfactor.layers.factor_layers import TaskFactor
from kfactor.layers.features import TeacherReader
from kfactor.layers.heads import classification_head
from kfactor.layers.normalization import FusedBatchNormalization

__all__ = [
    "CommonFactor",
    "FusedBatchNormalization",
    "MatmulConv2D",
    "ProjectionMLP",
    "TaskCode",
    "TaskFactor",
    "TeacherReader",
    "classification_head",
    "conv",
    "factor_layers",
    "features",
    "heads",
    "normalization",
]
