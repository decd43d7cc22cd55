"""Loaders for the official dSprites `.npz` and 3dshapes `.h5` files.

Both files are too large to load whole on a small machine (dSprites is
737,280 x 64 x 64 bytes = 3 GB once decompressed, 3dshapes 5.9 GB), so both
loaders first draw the split from the (small) label arrays, then read only
the rows they need: the dSprites images are streamed out of the `.npz` in
chunks, the 3dshapes images are read from the `.h5` in sorted index order.

Splits:

- dSprites follows the authors' code: a random 70/30 split from a
  permutation with `np.random.seed(42)` (`seed=42`). `num_train` /
  `num_test` keep the first rows of that train / test part, so a subset is
  always a subset of the reference split.
- 3dshapes uses a seeded *shuffled* 70/30 split. This deviates from the
  authors' code, which takes the first 70% of the file unshuffled: since
  `floor_hue` varies slowest in the file, that puts floor hues 7-9 only in
  the test set (method reference, section 5.7).
"""

import logging
import os
import zipfile

from kfactor.data.arrays import ArraySplit
from kfactor.lab.datasets.grid import DSPRITES_FACTOR_SIZES
from kfactor.lab.datasets.grid import DSPRITES_NUM_CLASSES
from kfactor.lab.datasets.grid import DSPRITES_TASKS

import numpy as np

DSPRITES_NPZ_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_URL = "https://github.com/deepmind/dsprites-dataset"
SHAPES3D_H5_NAME = "3dshapes.h5"
SHAPES3D_URL = "https://storage.googleapis.com/3d-shapes/3dshapes.h5"
SHAPES3D_TASKS = (
    "floor_hue",
    "wall_hue",
    "object_hue",
    "scale",
    "shape",
    "orientation",
)
SHAPES3D_NUM_CLASSES = dict(zip(SHAPES3D_TASKS, (10, 10, 10, 8, 4, 15)))
SPLIT_RATIO = 0.7
_CHUNK_BYTES = 32 * 2**20
_H5_BLOCK_ROWS = 4096

logger = logging.getLogger(__name__)


def _check_path(path, name, url):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Expected the file {name} at the given path. Received: "
            f"path={path!r}, which does not exist. Fix: download it from "
            f"{url} on a machine with internet and copy it here"
            + (
                ", or use `kfactor.lab.datasets.ProceduralDSprites`."
                if "sprites" in name
                else "."
            )
        )
    return path


def _split_rows(num_rows, permutation, num_train, num_test):
    """Train/test rows from a permutation, 70/30, then subset."""
    cut = int(num_rows * SPLIT_RATIO)
    parts = {"train": permutation[:cut], "test": permutation[cut:]}
    for name, wanted in (("train", num_train), ("test", num_test)):
        if wanted is None:
            continue
        if wanted < 0 or wanted > len(parts[name]):
            raise ValueError(
                f"Expected 0 <= num_{name} <= {len(parts[name])} (the "
                f"{name} part of the {SPLIT_RATIO:.0%} split of {num_rows} "
                f"rows). Received: num_{name}={wanted}."
            )
        parts[name] = parts[name][:wanted]
    return parts["train"], parts["test"]


def _gather_sorted(read_sorted_rows, rows):
    """Reads `rows` (any order, unique) through a sorted-order reader."""
    order = np.argsort(rows, kind="stable")
    data = read_sorted_rows(rows[order])
    out = np.empty_like(data)
    out[order] = data
    return out


def _read_npy_header(stream, key, path):
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(stream)
    raise ValueError(
        f"Expected {key!r} in {path} saved as .npy format 1.0 or 2.0. "
        f"Received: format {version}."
    )


def _stream_npy_rows(archive, key, rows, path):
    """Reads sorted `rows` of a C-order array in an .npz, chunk by chunk."""
    with archive.open(f"{key}.npy") as stream:
        shape, fortran_order, dtype = _read_npy_header(stream, key, path)
        if fortran_order or dtype.hasobject:
            raise ValueError(
                f"Expected {key!r} in {path} as a C-order numeric array. "
                f"Received: fortran_order={fortran_order}, dtype={dtype}."
            )
        row_shape = shape[1:]
        row_bytes = int(np.prod(row_shape)) * dtype.itemsize
        out = np.empty((len(rows),) + row_shape, dtype)
        chunk = max(1, _CHUNK_BYTES // max(row_bytes, 1))
        done = 0
        start = 0
        while done < len(rows):
            stop = min(start + chunk, shape[0])
            buffer = stream.read((stop - start) * row_bytes)
            if len(buffer) != (stop - start) * row_bytes:
                raise ValueError(
                    f"Expected {shape[0]} rows of {key!r} in {path}. "
                    f"Received: a truncated array (rows {start}-{stop} "
                    "missing). Fix: download the file again."
                )
            block = np.frombuffer(buffer, dtype).reshape(
                (stop - start,) + row_shape
            )
            end = np.searchsorted(rows, stop)
            out[done:end] = block[rows[done:end] - start]
            done, start = end, stop
    return out


def load_dsprites_npz(path, num_train=None, num_test=None, seed=42):
    """Loads the official dSprites `.npz` as an `ArraySplit`.

    Args:
        path: path to `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`.
        num_train: keep the first `num_train` rows of the reference train
            part (70%); None keeps all of it (516,096 images, 2.1 GB).
        num_test: same for the test part (30%).
        seed: seed of the reference permutation (42 in the authors' code).

    Returns:
        An `ArraySplit` with uint8 images `(N, 64, 64, 1)` in `{0, 1}`
        (`pixel_scale=1`), labels for `DSPRITES_TASKS` (the constant color
        column of `latents_classes` is dropped).

    Example:

    ```python
    split = load_dsprites_npz("dsprites.npz", num_train=30_000, num_test=10_000)
    ds = split.dataset("train", batch_size=128)  # (images, {task: labels})
    ```
    """
    path = _check_path(path, DSPRITES_NPZ_NAME, DSPRITES_URL)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"Expected an .npz (zip) archive. Received: path={path!r}, which "
            f"is not one. Fix: pass the official {DSPRITES_NPZ_NAME}."
        )
    with zipfile.ZipFile(path) as archive:
        keys = sorted(n[: -len(".npy")] for n in archive.namelist())
        missing = {"imgs", "latents_classes"} - set(keys)
        if missing:
            raise ValueError(
                f"Expected arrays 'imgs' and 'latents_classes' in {path}. "
                f"Received: keys={keys}, missing {sorted(missing)}. Fix: pass "
                f"the official {DSPRITES_NPZ_NAME}."
            )
        with archive.open("latents_classes.npy") as stream:
            classes = np.lib.format.read_array(stream)
        with archive.open("imgs.npy") as stream:
            img_shape, _, img_dtype = _read_npy_header(stream, "imgs", path)
        num_rows = classes.shape[0] if classes.ndim else 0
        factor_count = len(DSPRITES_FACTOR_SIZES) + 1
        if classes.ndim != 2 or classes.shape[1] != factor_count:
            raise ValueError(
                f"Expected 'latents_classes' of shape (N, {factor_count}) "
                "(color, shape, scale, orientation, posX, posY). Received: "
                f"shape={classes.shape}."
            )
        if img_shape != (num_rows, 64, 64) or img_dtype != np.uint8:
            raise ValueError(
                f"Expected 'imgs' uint8 of shape ({num_rows}, 64, 64). "
                f"Received: shape={img_shape}, dtype={img_dtype}."
            )
        labels = classes[:, 1:]
        if ((labels < 0) | (labels >= np.array(DSPRITES_FACTOR_SIZES))).any():
            raise ValueError(
                "Expected 'latents_classes' columns 1-5 within "
                f"{DSPRITES_FACTOR_SIZES}. Received: max per column "
                f"{labels.max(axis=0).tolist()}, min "
                f"{labels.min(axis=0).tolist()}."
            )
        permutation = np.arange(num_rows)
        np.random.RandomState(seed).shuffle(permutation)
        train, test = _split_rows(num_rows, permutation, num_train, num_test)
        rows = np.concatenate([train, test])
        images = _gather_sorted(
            lambda r: _stream_npy_rows(archive, "imgs", r, path), rows
        )[..., None]
    pixel_scale = 1.0
    if images.size and images.max() > 1:
        logger.info("dSprites images hold 0/255: using pixel_scale=1/255.")
        pixel_scale = 1.0 / 255.0
    labels = labels.astype(np.int32)
    return ArraySplit(
        train_images=images[: len(train)],
        train_labels=dict(zip(DSPRITES_TASKS, labels[train].T)),
        test_images=images[len(train) :],
        test_labels=dict(zip(DSPRITES_TASKS, labels[test].T)),
        task_names=DSPRITES_TASKS,
        num_classes=dict(DSPRITES_NUM_CLASSES),
        pixel_scale=pixel_scale,
    )


def _read_h5_rows(dataset, rows):
    """Reads sorted, unique `rows` of an h5py dataset block by block.

    Dense blocks are read as one slice (compressed chunks are decoded once),
    sparse blocks with a sorted fancy index (only the needed rows).
    """
    out = np.empty((len(rows),) + dataset.shape[1:], dataset.dtype)
    bounds = np.searchsorted(
        rows, np.arange(0, dataset.shape[0] + _H5_BLOCK_ROWS, _H5_BLOCK_ROWS)
    )
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if lo == hi:
            continue
        wanted = rows[lo:hi]
        first, last = int(wanted[0]), int(wanted[-1])
        if 4 * (hi - lo) >= last - first + 1:
            out[lo:hi] = dataset[first : last + 1][wanted - first]
        else:
            out[lo:hi] = dataset[wanted]
    return out


def load_3dshapes_h5(path, num_train=None, num_test=None, seed=0):
    """Loads the official `3dshapes.h5` as an `ArraySplit`.

    Labels are the index of each value among the sorted unique values of
    its column (as in the authors' code and TFDS), giving the tasks
    `SHAPES3D_TASKS` with classes (10, 10, 10, 8, 4, 15).

    Args:
        path: path to `3dshapes.h5` (datasets `images` uint8
            `(480000, 64, 64, 3)` and `labels` float64 `(480000, 6)`).
        num_train: keep the first `num_train` rows of the shuffled train
            part (70%); None keeps all of it (4.1 GB).
        num_test: same for the test part (30%).
        seed: seed of the shuffled split.

    Returns:
        An `ArraySplit` with uint8 images `(N, 64, 64, 3)` and
        `pixel_scale=1/255`.

    Example:

    ```python
    split = load_3dshapes_h5("3dshapes.h5", num_train=30_000, num_test=10_000)
    ds = split.dataset("test", batch_size=256)
    ```
    """
    import h5py

    path = _check_path(path, SHAPES3D_H5_NAME, SHAPES3D_URL)
    if not h5py.is_hdf5(path):
        raise ValueError(
            f"Expected an HDF5 file. Received: path={path!r}, which is not "
            f"one. Fix: pass the official {SHAPES3D_H5_NAME}."
        )
    with h5py.File(path, "r") as handle:
        missing = {"images", "labels"} - set(handle.keys())
        if missing:
            raise ValueError(
                f"Expected datasets 'images' and 'labels' in {path}. "
                f"Received: keys={sorted(handle.keys())}, missing "
                f"{sorted(missing)}. Fix: pass the official "
                f"{SHAPES3D_H5_NAME}."
            )
        images, values = handle["images"], handle["labels"][()]
        num_rows = len(values)
        num_tasks = len(SHAPES3D_TASKS)
        if values.ndim != 2 or values.shape[1] != num_tasks:
            raise ValueError(
                f"Expected 'labels' of shape (N, {num_tasks}) ordered as "
                f"{SHAPES3D_TASKS}. Received: shape={values.shape}."
            )
        if images.shape != (num_rows, 64, 64, 3) or images.dtype != np.uint8:
            raise ValueError(
                f"Expected 'images' uint8 of shape ({num_rows}, 64, 64, 3). "
                f"Received: shape={images.shape}, dtype={images.dtype}."
            )
        labels = np.empty(values.shape, np.int32)
        for column, task in enumerate(SHAPES3D_TASKS):
            uniques, labels[:, column] = np.unique(
                values[:, column], return_inverse=True
            )
            if len(uniques) > SHAPES3D_NUM_CLASSES[task]:
                raise ValueError(
                    f"Expected at most {SHAPES3D_NUM_CLASSES[task]} distinct "
                    f"values of {task!r} (column {column} of 'labels'). "
                    f"Received: {len(uniques)}."
                )
        permutation = np.random.default_rng(seed).permutation(num_rows)
        train, test = _split_rows(num_rows, permutation, num_train, num_test)
        rows = np.concatenate([train, test])
        pixels = _gather_sorted(lambda r: _read_h5_rows(images, r), rows)
    return ArraySplit(
        train_images=pixels[: len(train)],
        train_labels=dict(zip(SHAPES3D_TASKS, labels[train].T)),
        test_images=pixels[len(train) :],
        test_labels=dict(zip(SHAPES3D_TASKS, labels[test].T)),
        task_names=SHAPES3D_TASKS,
        num_classes=dict(SHAPES3D_NUM_CLASSES),
        pixel_scale=1.0 / 255.0,
    )


__all__ = [
    "DSPRITES_NPZ_NAME",
    "DSPRITES_URL",
    "SHAPES3D_H5_NAME",
    "SHAPES3D_NUM_CLASSES",
    "SHAPES3D_TASKS",
    "SHAPES3D_URL",
    "SPLIT_RATIO",
    "load_3dshapes_h5",
    "load_dsprites_npz",
]
