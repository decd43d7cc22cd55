"""Times the training step with and without XLA, with and without checks.

Run: `python examples/measure_xla_checks.py` from the repository root. A
narrow SimpleConv64 factorization of 64x64x1 images, batch 64, two tasks;
the median of `--steps` timed steps after a warm-up epoch.
"""

import sys
import time

import kfactor

import keras
import numpy as np
import tensorflow as tf


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def dataset(steps, batch=64):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (steps * batch, 64, 64, 1)).astype("float32")
    labels = {t: rng.integers(0, 3, steps * batch) for t in ("a", "b")}
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)


def step_ms(jit_compile, check_batches, steps):
    keras.utils.set_random_seed(0)
    encoder = lambda latent, name: kfactor.simple_conv64(  # noqa: E731
        latent, widths=kfactor.zoo.NARROW_WIDTHS, name=name
    )
    teacher = kfactor.multitask_teacher(
        {"a": 3, "b": 3}, encoder=encoder(10, "t")
    )
    factorizer = kfactor.Factorizer(
        teacher,
        common=encoder(10, "c"),
        tasks={t: encoder(None, t) for t in ("a", "b")},
        check_batches=check_batches,
    )
    factorizer.compile(jit_compile=jit_compile)
    data = dataset(steps).cache()
    factorizer.fit(data.take(2), epochs=1, verbose=0)  # trace + compile
    timer = StepTimer()
    factorizer.fit(data, epochs=1, verbose=0, callbacks=[timer])
    return 1e3 * float(np.median(timer.times))


def main(steps=30):
    for jit in (False, True):
        for check in (True, False):
            ms = step_ms(jit, check, steps)
            print(
                f"jit_compile={jit!s:5} check_batches={check!s:5}: "
                f"{ms:.1f} ms/step",
                flush=True,
            )


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
