"""The paper's data sets: procedural dSprites, its official files, 3dshapes
and TFDS, in the core's format (batched `(images, {task: labels})`, float32
channels-last images in `[0, 1]`, int32 class labels)."""

from kfactor.lab.datasets.dsprites import ProceduralDSprites
from kfactor.lab.datasets.files import SHAPES3D_NUM_CLASSES
from kfactor.lab.datasets.files import SHAPES3D_TASKS
from kfactor.lab.datasets.files import load_3dshapes_h5
from kfactor.lab.datasets.files import load_dsprites_npz
from kfactor.lab.datasets.grid import DSPRITES_FACTOR_SIZES
from kfactor.lab.datasets.grid import DSPRITES_FACTOR_VALUES
from kfactor.lab.datasets.grid import DSPRITES_INTRINSIC_LEAKAGE
from kfactor.lab.datasets.grid import DSPRITES_NUM_CLASSES
from kfactor.lab.datasets.grid import DSPRITES_NUM_IMAGES
from kfactor.lab.datasets.grid import DSPRITES_SHAPE_NAMES
from kfactor.lab.datasets.grid import DSPRITES_TASKS
from kfactor.lab.datasets.grid import dsprites_split
from kfactor.lab.datasets.grid import factors_to_index
from kfactor.lab.datasets.grid import index_to_factors
from kfactor.lab.datasets.grid import indices_outside
from kfactor.lab.datasets.pipeline import dsprites_dataset
from kfactor.lab.datasets.render import OBSERVATION_SHAPE
from kfactor.lab.datasets.render import render_numpy
from kfactor.lab.datasets.render import render_tf
from kfactor.lab.datasets.tfds_loaders import CIFAR10_NUM_CLASSES
from kfactor.lab.datasets.tfds_loaders import TFDS_LABEL_FEATURES
from kfactor.lab.datasets.tfds_loaders import TFDS_NUM_CLASSES
from kfactor.lab.datasets.tfds_loaders import load_tfds

__all__ = [
    "CIFAR10_NUM_CLASSES",
    "DSPRITES_FACTOR_SIZES",
    "DSPRITES_FACTOR_VALUES",
    "DSPRITES_INTRINSIC_LEAKAGE",
    "DSPRITES_NUM_CLASSES",
    "DSPRITES_NUM_IMAGES",
    "DSPRITES_SHAPE_NAMES",
    "DSPRITES_TASKS",
    "OBSERVATION_SHAPE",
    "SHAPES3D_NUM_CLASSES",
    "SHAPES3D_TASKS",
    "TFDS_LABEL_FEATURES",
    "TFDS_NUM_CLASSES",
    "ProceduralDSprites",
    "dsprites_dataset",
    "dsprites_split",
    "factors_to_index",
    "index_to_factors",
    "indices_outside",
    "load_3dshapes_h5",
    "load_dsprites_npz",
    "load_tfds",
    "render_numpy",
    "render_tf",
]
