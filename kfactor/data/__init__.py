"""Input pipelines for any data set: arrays, image folders, prefetching, and
the loops that collect a model's outputs and codes over a dataset.

Every pipeline yields batched `(images, {task: labels})` with float32
channels-last images and int32 class labels. The paper's data sets
(procedural dSprites, its official files, TFDS) are the lab's:
`kfactor.lab.datasets`.
"""

from kfactor.data.arrays import ArraySplit
from kfactor.data.collect import collect_codes
from kfactor.data.collect import collect_outputs
from kfactor.data.collect import concatenate_blocks
from kfactor.data.folders import load_image_folder
from kfactor.data.pipeline import array_dataset
from kfactor.data.pipeline import position_batches

__all__ = [
    "ArraySplit",
    "array_dataset",
    "collect_codes",
    "collect_outputs",
    "concatenate_blocks",
    "load_image_folder",
    "position_batches",
]
