"""Tests of the official-file loaders and `ArraySplit`, on tiny fake files."""

from kfactor.data import ArraySplit
from kfactor.lab import datasets as kd
from kfactor.lab.datasets import files

import h5py
import numpy as np
import pytest
import tensorflow as tf

SHAPES3D_VALUES = (
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.75, 1.25, 8),
    np.arange(4.0),
    np.linspace(-30.0, 30.0, 15),
)


def write_dsprites_npz(path, num=600, **overrides):
    """A small grid subset in the official layout; returns its arrays."""
    rng = np.random.default_rng(0)
    grid = np.sort(rng.choice(kd.DSPRITES_NUM_IMAGES, num, replace=False))
    factors = kd.index_to_factors(grid)
    arrays = {
        "imgs": kd.render_numpy(factors)[..., 0].astype(np.uint8),
        "latents_classes": np.concatenate(
            [np.zeros((num, 1), np.int64), factors], axis=1
        ),
        "latents_values": np.zeros((num, 6)),
    }
    arrays.update(overrides)
    np.savez_compressed(path, **arrays)
    return arrays


def write_3dshapes_h5(path, num=300, images=None, labels=None):
    """Rows ordered like the official file (floor hue slowest); pixel
    (0, 0) encodes the row number, so rows can be traced after loading."""
    rng = np.random.default_rng(0)
    if labels is None:
        columns = [rng.choice(v, num) for v in SHAPES3D_VALUES]
        labels = np.stack(columns, axis=-1)
        labels = labels[np.argsort(labels[:, 0], kind="stable")]
    if images is None:
        images = rng.integers(0, 256, (num, 64, 64, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = np.arange(num) % 256
        images[:, 0, 0, 1] = np.arange(num) // 256
    with h5py.File(path, "w") as handle:
        handle.create_dataset(
            "images",
            data=images,
            chunks=(min(16, len(images)),) + images.shape[1:],
            compression="gzip",
        )
        handle.create_dataset("labels", data=labels)
    return images, labels


def row_ids(images):
    return images[:, 0, 0, 0].astype(int) + 256 * images[:, 0, 0, 1].astype(int)


# === dSprites .npz ===


def test_dsprites_npz_reference_split(tmp_path):
    path = tmp_path / files.DSPRITES_NPZ_NAME
    arrays = write_dsprites_npz(path)
    split = kd.load_dsprites_npz(path)
    order = np.arange(600)
    np.random.RandomState(42).shuffle(order)  # the authors' split
    train, test = order[:420], order[420:]
    assert (split.num_train, split.num_test) == (420, 180)
    assert split.task_names == kd.DSPRITES_TASKS
    assert split.num_classes == kd.DSPRITES_NUM_CLASSES
    assert split.train_images.shape == (420, 64, 64, 1)
    np.testing.assert_array_equal(
        split.train_images[..., 0], arrays["imgs"][train]
    )
    np.testing.assert_array_equal(
        split.test_images[..., 0], arrays["imgs"][test]
    )
    for k, task in enumerate(kd.DSPRITES_TASKS):
        expected = arrays["latents_classes"][:, k + 1]
        np.testing.assert_array_equal(split.train_labels[task], expected[train])
        np.testing.assert_array_equal(split.test_labels[task], expected[test])
        assert split.train_labels[task].dtype == np.int32
    assert split.pixel_scale == 1.0


def test_dsprites_npz_subset_streams_in_chunks(tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    arrays = write_dsprites_npz(path)
    full = kd.load_dsprites_npz(path)
    monkeypatch.setattr(files, "_CHUNK_BYTES", 7 * 4096)  # 7 rows a chunk
    subset = kd.load_dsprites_npz(path, num_train=50, num_test=20)
    np.testing.assert_array_equal(subset.train_images, full.train_images[:50])
    np.testing.assert_array_equal(subset.test_images, full.test_images[:20])
    np.testing.assert_array_equal(
        subset.test_labels["pos_x"], full.test_labels["pos_x"][:20]
    )
    # Images still match their labels: re-render from the labels.
    factors = np.stack(
        [subset.train_labels[t] for t in kd.DSPRITES_TASKS], axis=-1
    )
    np.testing.assert_array_equal(
        subset.train_images.astype(np.float32), kd.render_numpy(factors)
    )
    assert arrays["imgs"].shape == (600, 64, 64)


def test_dsprites_npz_dataset_format(tmp_path):
    path = tmp_path / "d.npz"
    write_dsprites_npz(path, num=100)
    split = kd.load_dsprites_npz(path, num_train=64, num_test=10)
    ds = split.dataset("train", batch_size=32, seed=1)
    images, labels = next(iter(ds))
    assert images.dtype == tf.float32 and images.shape == (32, 64, 64, 1)
    assert set(np.unique(images.numpy())) <= {0.0, 1.0}
    assert tuple(labels) == kd.DSPRITES_TASKS
    assert all(v.dtype == tf.int32 for v in labels.values())
    assert int(ds.cardinality()) == 2
    test_batch = next(iter(split.dataset("test", batch_size=10)))
    np.testing.assert_array_equal(
        test_batch[1]["shape"].numpy(), split.test_labels["shape"]
    )


def test_dsprites_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Fix: download"):
        kd.load_dsprites_npz(tmp_path / "missing.npz")
    not_zip = tmp_path / "bad.npz"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="zip"):
        kd.load_dsprites_npz(not_zip)
    no_imgs = tmp_path / "no_imgs.npz"
    np.savez(no_imgs, images=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="'imgs'.*Received: keys"):
        kd.load_dsprites_npz(no_imgs)
    small = tmp_path / "small.npz"
    write_dsprites_npz(small, num=10, imgs=np.zeros((10, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"\(10, 64, 64\).*Received"):
        kd.load_dsprites_npz(small)
    five = tmp_path / "five.npz"
    write_dsprites_npz(five, num=10, latents_classes=np.zeros((10, 5), int))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        kd.load_dsprites_npz(five)
    too_big = tmp_path / "big.npz"
    write_dsprites_npz(too_big, num=10, latents_classes=np.full((10, 6), 3))
    with pytest.raises(ValueError, match="within"):
        kd.load_dsprites_npz(too_big)
    ok = tmp_path / "ok.npz"
    write_dsprites_npz(ok, num=10)
    with pytest.raises(ValueError, match="num_train"):
        kd.load_dsprites_npz(ok, num_train=8)


# === 3dshapes .h5 ===


def test_3dshapes_labels_are_sorted_unique_value_indices(tmp_path):
    path = tmp_path / files.SHAPES3D_H5_NAME
    images, values = write_3dshapes_h5(path)
    split = kd.load_3dshapes_h5(path, seed=0)
    assert split.task_names == kd.SHAPES3D_TASKS
    assert tuple(split.num_classes.values()) == (10, 10, 10, 8, 4, 15)
    assert (split.num_train, split.num_test) == (210, 90)
    assert split.train_images.shape[1:] == (64, 64, 3)
    assert split.pixel_scale == pytest.approx(1 / 255)
    for name, part_images, part_labels in (
        ("train", split.train_images, split.train_labels),
        ("test", split.test_images, split.test_labels),
    ):
        rows = row_ids(part_images)
        np.testing.assert_array_equal(part_images, images[rows])
        for k, task in enumerate(kd.SHAPES3D_TASKS):
            uniques = np.unique(values[:, k])
            np.testing.assert_array_equal(
                uniques[part_labels[task]], values[rows, k], err_msg=name
            )
    all_rows = np.concatenate(
        [row_ids(split.train_images), row_ids(split.test_images)]
    )
    np.testing.assert_array_equal(np.sort(all_rows), np.arange(300))


def test_3dshapes_split_is_shuffled_and_seeded(tmp_path):
    path = tmp_path / "s.h5"
    write_3dshapes_h5(path)
    split = kd.load_3dshapes_h5(path, seed=0)
    # Unlike the authors' unshuffled split, low floor hues reach the test set.
    assert split.test_labels["floor_hue"].min() < 7
    again = kd.load_3dshapes_h5(path, seed=0)
    np.testing.assert_array_equal(again.train_images, split.train_images)
    other = kd.load_3dshapes_h5(path, seed=1)
    assert not np.array_equal(other.train_images, split.train_images)


def test_3dshapes_subset_reads_dense_and_sparse_blocks(tmp_path, monkeypatch):
    path = tmp_path / "s.h5"
    images, _ = write_3dshapes_h5(path)
    monkeypatch.setattr(files, "_H5_BLOCK_ROWS", 40)
    for num_train, num_test in ((200, 80), (6, 3)):
        split = kd.load_3dshapes_h5(path, num_train, num_test, seed=2)
        assert (split.num_train, split.num_test) == (num_train, num_test)
        rows = row_ids(split.train_images)
        np.testing.assert_array_equal(split.train_images, images[rows])
    images_batch, labels = next(iter(split.dataset("train", batch_size=6)))
    assert images_batch.dtype == tf.float32
    assert float(tf.reduce_max(images_batch)) <= 1.0
    assert labels["orientation"].dtype == tf.int32


def test_3dshapes_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="3dshapes.h5"):
        kd.load_3dshapes_h5(tmp_path / "missing.h5")
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(ValueError, match="HDF5"):
        kd.load_3dshapes_h5(text)
    wrong_keys = tmp_path / "keys.h5"
    with h5py.File(wrong_keys, "w") as handle:
        handle.create_dataset("imgs", data=np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="'labels'.*Received: keys"):
        kd.load_3dshapes_h5(wrong_keys)
    gray = tmp_path / "gray.h5"
    write_3dshapes_h5(
        gray,
        num=4,
        images=np.zeros((4, 64, 64, 1), np.uint8),
        labels=np.zeros((4, 6)),
    )
    with pytest.raises(ValueError, match=r"\(4, 64, 64, 3\)"):
        kd.load_3dshapes_h5(gray)
    five = tmp_path / "five.h5"
    write_3dshapes_h5(five, num=4, labels=np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        kd.load_3dshapes_h5(five)
    many_shapes = np.zeros((6, 6))
    many_shapes[:, 4] = np.arange(6)  # 6 distinct shapes, 4 expected
    many = tmp_path / "many.h5"
    write_3dshapes_h5(many, num=6, labels=many_shapes)
    with pytest.raises(ValueError, match="at most 4 distinct"):
        kd.load_3dshapes_h5(many)


# === ArraySplit ===


def make_split(**overrides):
    kwargs = dict(
        train_images=np.zeros((4, 8, 8, 1), np.uint8),
        train_labels={"t": np.array([0, 1, 0, 1])},
        test_images=np.zeros((2, 8, 8, 1), np.uint8),
        test_labels={"t": np.array([1, 0])},
        task_names=("t",),
        num_classes={"t": 2},
    )
    kwargs.update(overrides)
    return ArraySplit(**kwargs)


def test_array_split_validates():
    split = make_split()
    assert split.image_shape == (8, 8, 1)
    with pytest.raises(ValueError, match="same shape"):
        make_split(test_images=np.zeros((2, 4, 4, 1), np.uint8))
    with pytest.raises(ValueError, match="keys"):
        make_split(test_labels={"u": np.array([1, 0])})
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        make_split(train_labels={"t": np.array([0, 1, 2, 1])})
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        make_split(train_labels={"t": np.array([0, 1])})
    with pytest.raises(ValueError, match="num_classes"):
        make_split(num_classes={"u": 2})
    with pytest.raises(ValueError, match="split in"):
        split.dataset("valid")
    empty = make_split(
        test_images=np.zeros((0, 8, 8, 1), np.uint8),
        test_labels={"t": np.zeros(0, int)},
    )
    with pytest.raises(ValueError, match="empty"):
        empty.dataset("test")


def test_array_split_dataset_shuffles_train_only():
    images = np.arange(64, dtype=np.uint8).reshape(64, 1, 1, 1)
    labels = {"t": np.arange(64) % 4}
    split = make_split(
        train_images=images,
        train_labels=labels,
        test_images=images,
        test_labels=labels,
        num_classes={"t": 4},
        pixel_scale=1 / 255,
    )
    train = np.concatenate([x.numpy().ravel() for x, _ in split.dataset()])
    test = np.concatenate(
        [x.numpy().ravel() for x, _ in split.dataset("test", batch_size=16)]
    )
    np.testing.assert_allclose(test, np.arange(64) / 255, rtol=1e-6)
    assert not np.array_equal(train, test)
    np.testing.assert_allclose(np.sort(train), test, rtol=1e-6)
