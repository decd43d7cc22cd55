"""Times the training step with and without XLA, with and without checks.

Run: `python examples/measure_xla_checks.py` from the repository root. A
narrow SimpleConv64 factorization of 64x64x1 images, batch 64, two tasks;
interleaved rounds; process CPU time (the machine may be shared).
"""

import sys
import time

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402


import keras
import numpy as np
import tensorflow as tf


def dataset(steps, batch=64):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (steps * batch, 64, 64, 1)).astype("float32")
    labels = {t: rng.integers(0, 3, steps * batch) for t in ("a", "b")}
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    return data.batch(batch).cache()


def factorizer(jit_compile, check_batches):
    keras.utils.set_random_seed(0)
    encoder = lambda latent, name: kfactor.zoo.simple_conv64(  # noqa: E731
        latent, widths=kfactor.zoo.NARROW_WIDTHS, name=name
    )
    teacher = kfactor.zoo.multitask_teacher(
        {"a": 3, "b": 3}, encoder=encoder(10, "t")
    )
    model = kfactor.Factorizer(
        teacher,
        common=encoder(10, "c"),
        tasks={t: encoder(None, t) for t in ("a", "b")},
        check_batches=check_batches,
        stop_on_nonfinite_loss=check_batches,
    )
    model.compile(jit_compile=jit_compile)
    return model


def main(steps=10, rounds=5):
    """Interleaved rounds (ABCD, DCBA, ...) of `steps` steps each; the
    median over rounds of the process CPU ms per step."""
    data = dataset(steps)
    configs = [(jit, check) for jit in (False, True) for check in (True, False)]
    models = {c: factorizer(*c) for c in configs}
    for model in models.values():
        model.fit(data.take(2), epochs=1, verbose=0)  # trace + compile
    times = {c: [] for c in configs}
    for r in range(rounds):
        for config in configs if r % 2 == 0 else configs[::-1]:
            start = time.process_time()
            models[config].fit(data, epochs=1, verbose=0)
            times[config].append(1e3 * (time.process_time() - start) / steps)
    for (jit, check), values in times.items():
        print(
            f"jit_compile={jit!s:5} checks={check!s:5}: "
            f"{np.median(values):.1f} CPU ms/step (rounds: "
            f"{', '.join(f'{v:.0f}' for v in values)})",
            flush=True,
        )


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
