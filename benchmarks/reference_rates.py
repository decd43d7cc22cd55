"""Reference rates: a dense fp32 matmul and procedural data generation.

- `matmul/{size}`: `size x size` fp32 matmuls (`tf.function`), in FLOPs:
  what the hardware reaches on the densest kernel, the yardstick of the
  training steps' achieved GFLOP/s.
- `data/dsprites`: `kfactor.lab.datasets.dsprites_dataset` (procedural dSprites
  rendered per batch in tf.data, shuffled, repeated), in images pulled from
  its iterator per second. Each window starts a new iterator and pulls a
  first batch before the clock starts: no prefetching runs while other
  items are timed, and a window does not begin on a full prefetch buffer.
"""

import kfactor
from kfactor.lab.demo import DemoConfig

import tensorflow as tf

from benchmarks import flops
from benchmarks.protocol import Item

MATMUL_SIZE = 2048
#: The demo's train / test sizes (50,000 / 5,000 today).
DATA_SPLIT = (DemoConfig().num_train, DemoConfig().num_test)


def matmul_items(size=MATMUL_SIZE):
    """One item: `size^2` fp32 matmuls, units FLOPs."""
    a = tf.random.normal((size, size), seed=1)
    b = tf.random.normal((size, size), seed=2)
    matmul = tf.function(tf.linalg.matmul)

    def run(calls):
        for _ in range(calls):
            product = matmul(a, b)
        float(product[0, 0])  # waits for the last one

    meta = {"size": size, "dtype": "float32"}
    units = flops.matmul_flops(size)
    return [Item(f"matmul/{size}", run, units, unit="flop", meta=meta)]


def data_items(batch_size):
    """One item: batches of the demo's procedural dSprites pipeline."""
    dsprites = kfactor.lab.datasets.ProceduralDSprites(seed=0)
    train, _ = dsprites.split(*DATA_SPLIT)
    dataset = kfactor.lab.datasets.dsprites_dataset(
        train, batch_size=batch_size, shuffle=True, seed=0, repeat=True
    )
    started = []  # an iterator that has given its first batch

    def setup():
        iterator = iter(dataset)
        next(iterator)
        started.append(iterator)

    def run(calls):
        if not started:
            setup()
        iterator = started.pop()
        for _ in range(calls):
            next(iterator)
        del iterator  # stops its prefetching before other items run

    meta = {"batch_size": batch_size, "pipeline": "dsprites_dataset"}
    return [Item("data/dsprites", run, batch_size, meta=meta, setup=setup)]
