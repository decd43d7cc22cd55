"""Tests of the offline TFDS loaders, with `tfds.testing.mock_data`."""

from kfactor.lab import datasets as kd

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

SHAPES = {
    "dsprites": (64, 64, 1),
    "shapes3d": (64, 64, 3),
    "cifar10": (32, 32, 3),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_mocked_tfds_gives_task_dicts(name, tmp_path):
    with tfds.testing.mock_data(num_examples=20):
        ds = kd.load_tfds(name, tmp_path, batch_size=8, seed=1)
        batches = list(ds.as_numpy_iterator())
    images_spec, labels_spec = ds.element_spec
    assert images_spec.shape.as_list() == [None, *SHAPES[name]]
    assert images_spec.dtype == tf.float32
    assert tuple(labels_spec) == tuple(kd.TFDS_LABEL_FEATURES[name])
    assert all(spec.dtype == tf.int32 for spec in labels_spec.values())
    assert int(ds.cardinality()) == 3
    assert [len(b[0]) for b in batches] == [8, 8, 4]
    images = np.concatenate([b[0] for b in batches])
    assert 0.0 <= images.min() and images.max() <= 1.0
    for task, num_classes in kd.TFDS_NUM_CLASSES[name].items():
        labels = np.concatenate([b[1][task] for b in batches])
        assert labels.min() >= 0 and labels.max() < num_classes
    if name == "dsprites":
        assert set(np.unique(images).tolist()) <= {0.0, 1.0}


def test_task_names_and_classes_match_the_other_loaders():
    assert tuple(kd.TFDS_LABEL_FEATURES["dsprites"]) == kd.DSPRITES_TASKS
    assert tuple(kd.TFDS_LABEL_FEATURES["shapes3d"]) == kd.SHAPES3D_TASKS
    assert kd.TFDS_NUM_CLASSES["dsprites"] == kd.DSPRITES_NUM_CLASSES
    assert kd.TFDS_NUM_CLASSES["shapes3d"] == kd.SHAPES3D_NUM_CLASSES
    assert kd.TFDS_NUM_CLASSES["cifar10"] == {"label": 10}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_feature_names_exist_in_the_real_builders(name, tmp_path):
    features = tfds.builder(name, data_dir=tmp_path).info.features
    for task, feature in kd.TFDS_LABEL_FEATURES[name].items():
        assert feature in features
        assert features[feature].num_classes == kd.TFDS_NUM_CLASSES[name][task]


def test_mocked_tfds_is_seeded_and_repeats(tmp_path):
    def first_labels(seed):
        with tfds.testing.mock_data(num_examples=40):
            ds = kd.load_tfds("cifar10", tmp_path, batch_size=40, seed=seed)
            return next(iter(ds))[1]["label"].numpy()

    np.testing.assert_array_equal(first_labels(3), first_labels(3))
    with tfds.testing.mock_data(num_examples=10):
        looped = kd.load_tfds(
            "shapes3d", tmp_path, batch_size=4, repeat=True, shuffle=False
        )
        assert len(list(looped.take(7))) == 7


def test_missing_data_raises_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        kd.load_tfds("dsprites", tmp_path)
    message = str(info.value)
    for part in (
        "download_and_prepare",
        "manual_dir",
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5",
        str(tmp_path),
    ):
        assert part in message
    with pytest.raises(FileNotFoundError, match="no such directory"):
        kd.load_tfds("cifar10", tmp_path / "absent")


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="Expected name in"):
        kd.load_tfds("mnist", None)
