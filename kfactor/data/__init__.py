"""Datasets for kfactor: procedural dSprites, official files and TFDS.

Every loader yields the same format: batched `(images, {task: labels})`
with float32 channels-last images in `[0, 1]` and int32 class labels.
"""

from kfactor.data.arrays import ArraySplit
from kfactor.data.collect import collect_codes
from kfactor.data.collect import collect_outputs
from kfactor.data.collect import concatenate_blocks
from kfactor.data.dsprites import ProceduralDSprites
from kfactor.data.files import SHAPES3D_NUM_CLASSES
from kfactor.data.files import SHAPES3D_TASKS
from kfactor.data.files import load_3dshapes_h5
from kfactor.data.files import load_dsprites_npz
from kfactor.data.folders import load_image_folder
from kfactor.data.grid import DSPRITES_FACTOR_SIZES
from kfactor.data.grid import DSPRITES_FACTOR_VALUES
from kfactor.data.grid import DSPRITES_INTRINSIC_LEAKAGE
from kfactor.data.grid import DSPRITES_NUM_CLASSES
from kfactor.data.grid import DSPRITES_NUM_IMAGES
from kfactor.data.grid import DSPRITES_SHAPE_NAMES
from kfactor.data.grid import DSPRITES_TASKS
from kfactor.data.grid import dsprites_split
from kfactor.data.grid import factors_to_index
from kfactor.data.grid import index_to_factors
from kfactor.data.grid import indices_outside
from kfactor.data.pipeline import array_dataset
from kfactor.data.pipeline import dsprites_dataset
from kfactor.data.render import render_numpy
from kfactor.data.render import render_tf
from kfactor.data.tfds_loaders import CIFAR10_NUM_CLASSES
from kfactor.data.tfds_loaders import TFDS_LABEL_FEATURES
from kfactor.data.tfds_loaders import TFDS_NUM_CLASSES
from kfactor.data.tfds_loaders import load_tfds

__all__ = [
    "CIFAR10_NUM_CLASSES",
    "DSPRITES_FACTOR_SIZES",
    "DSPRITES_FACTOR_VALUES",
    "DSPRITES_INTRINSIC_LEAKAGE",
    "DSPRITES_NUM_CLASSES",
    "DSPRITES_NUM_IMAGES",
    "DSPRITES_SHAPE_NAMES",
    "DSPRITES_TASKS",
    "SHAPES3D_NUM_CLASSES",
    "SHAPES3D_TASKS",
    "TFDS_LABEL_FEATURES",
    "TFDS_NUM_CLASSES",
    "ArraySplit",
    "ProceduralDSprites",
    "array_dataset",
    "collect_codes",
    "collect_outputs",
    "concatenate_blocks",
    "dsprites_dataset",
    "dsprites_split",
    "factors_to_index",
    "index_to_factors",
    "indices_outside",
    "load_3dshapes_h5",
    "load_dsprites_npz",
    "load_image_folder",
    "load_tfds",
    "render_numpy",
    "render_tf",
]
