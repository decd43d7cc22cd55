"""Image folders as a one-task dataset."""

from kfactor.data.folders import load_image_folder

import keras
import numpy as np
import pytest
import tensorflow as tf


def write_folder(root, classes=("cat", "dog"), per_class=5):
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            image = np.full((6, 6, 3), 50 + 150 * label, "float32")
            keras.utils.save_img(
                root / name / f"{index}.png", image, scale=False
            )
    return root


def test_folder_gives_task_dicts_in_unit_range(tmp_path):
    root = write_folder(tmp_path / "images")
    ds, names = load_image_folder(
        root, task="animal", image_size=(6, 6), batch_size=4, shuffle=False
    )
    assert names == ["cat", "dog"]
    images_spec, labels_spec = ds.element_spec
    assert images_spec.shape.as_list() == [None, 6, 6, 3]
    assert images_spec.dtype == tf.float32
    assert labels_spec["animal"].dtype == tf.int32
    images = np.concatenate([b[0] for b in ds.as_numpy_iterator()])
    labels = np.concatenate([b[1]["animal"] for b in ds.as_numpy_iterator()])
    assert labels.tolist() == [0] * 5 + [1] * 5
    np.testing.assert_allclose(images[labels == 0], 50 / 255, atol=1e-6)
    np.testing.assert_allclose(images[labels == 1], 200 / 255, atol=1e-6)


def test_validation_split_is_disjoint_and_complete(tmp_path):
    root = write_folder(tmp_path / "images", per_class=10)
    split = dict(image_size=(6, 6), validation_split=0.3, seed=3)
    train, _ = load_image_folder(root, subset="training", **split)
    test, _ = load_image_folder(root, subset="validation", **split)
    count = lambda ds: sum(len(b[0]) for b in ds.as_numpy_iterator())  # noqa: E731
    assert (count(train), count(test)) == (14, 6)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="one sub-folder per class"):
        load_image_folder(tmp_path / "nope")
