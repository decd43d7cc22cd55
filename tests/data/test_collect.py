"""`kfactor.data.collect`: one loop runs readers over a labelled dataset."""

import doctest

from kfactor.data import collect

import numpy as np
import pytest
import tensorflow as tf


def labelled(num=10, batch_size=4):
    images = np.arange(num * 3, dtype="float32").reshape(num, 3)
    labels = {"y": np.arange(num) % 3, "z": np.arange(num)}
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return images, labels, dataset.batch(batch_size)


def two_outputs(images):
    return {"sum": tf.reduce_sum(images, -1), "first": images[:, :1]}


def test_collect_outputs_stacks_nested_outputs_and_labels():
    images, labels, dataset = labelled()
    functions = {"double": lambda x: 2 * x, "nested": two_outputs}
    outputs, got = collect.collect_outputs(functions, dataset)
    np.testing.assert_array_equal(outputs["double"], 2 * images)
    np.testing.assert_array_equal(outputs["nested"]["sum"], images.sum(-1))
    assert outputs["nested"]["first"].shape == (10, 1)
    np.testing.assert_array_equal(got["z"], labels["z"])


def test_collect_outputs_stops_at_max_examples_mid_batch():
    images, labels, dataset = labelled()
    outputs, got = collect.collect_outputs(
        {"x": tf.identity}, dataset.repeat(), max_examples=6
    )
    np.testing.assert_array_equal(outputs["x"], images[:6])
    np.testing.assert_array_equal(got["y"], labels["y"][:6])


def test_collect_outputs_of_an_empty_dataset_raises():
    _, _, dataset = labelled()
    with pytest.raises(ValueError, match="empty dataset"):
        collect.collect_outputs({"x": tf.identity}, dataset.take(0))


def test_collect_codes_stacks_factors_in_the_order_asked():
    images, labels, dataset = labelled()
    codes, factors = collect.collect_codes(
        {"x": tf.identity}, dataset, ["z", "y"]
    )
    assert codes["x"].dtype == np.float32
    np.testing.assert_array_equal(factors[:, 0], labels["z"])
    np.testing.assert_array_equal(factors[:, 1], labels["y"])
    blocks = collect.concatenate_blocks({"a": images, "b": factors}, "ab")
    assert blocks.shape == (10, 5)


def test_the_docstring_example_runs():
    result = doctest.testmod(collect, extraglobs={"np": np, "tf": tf})
    assert result.attempted and not result.failed
