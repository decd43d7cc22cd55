"""kfactor's pipelines end with a fixed prefetch and tf.data autotuning off."""

import doctest

from kfactor import data
from kfactor.data import prefetch
from kfactor.data.prefetch import prefetched
from kfactor.lab import datasets

import numpy as np
import tensorflow as tf


def test_prefetched_turns_autotuning_off_and_keeps_the_elements():
    ds = tf.data.Dataset.range(10).batch(3)
    assert ds.options().autotune.enabled is not False
    out = prefetched(ds)
    assert out.options().autotune.enabled is False
    got = [b.numpy().tolist() for b in out]
    assert got == [b.numpy().tolist() for b in ds]


def test_kfactor_pipelines_are_prefetched_without_autotuning():
    images = np.zeros((6, 8, 8, 1), "float32")
    pipelines = [
        datasets.dsprites_dataset(np.arange(32), batch_size=8),
        data.array_dataset(images, {"t": np.zeros(6, "int32")}, batch_size=2),
    ]
    for ds in pipelines:
        assert ds.options().autotune.enabled is False
        assert len(list(ds)) > 0


def test_docstring_examples():
    result = doctest.testmod(prefetch, extraglobs={"tf": tf})
    assert result.failed == 0 and result.attempted > 0
