"""Watching a run in TensorBoard: fit's scalars and the report's figures.

`fit_callback(log_dir)` is Keras's own `TensorBoard` callback: every metric
a model reports goes to `<log_dir>/train` and `<log_dir>/validation` as
`epoch_<name>`, for a `kfactor.Factorizer` each loss term, each task's
accuracy and its health (`common_cosine`, `common_participation_ratio`,
`<task>_kl`). `write_figures` adds the report's PNG figures as images, and
`read_scalars` reads event files back (TensorBoard's own reader).
"""

import os

import keras
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

#: `kfactor demo` writes its TensorBoard logs to `<output_dir>/logs`.
LOGS_DIR = "logs"
#: Where the report's figures go, under the logs.
FIGURES_RUN = "report"


def fit_callback(log_dir):
    """A `keras.callbacks.TensorBoard` of epoch scalars (no graph, profile).

    Example:

    >>> callback = fit_callback("/tmp/kfactor-logs/factorization")
    >>> callback.log_dir
    '/tmp/kfactor-logs/factorization'
    """
    return keras.callbacks.TensorBoard(
        log_dir=os.fspath(log_dir),
        write_graph=False,
        profile_batch=0,
        update_freq="epoch",
    )


def write_figures(figures, log_dir, step=0):
    """Writes `{name: PNG path}` as TensorBoard images; returns the run dir."""
    run_dir = os.path.join(os.fspath(log_dir), FIGURES_RUN)
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        for name, path in sorted(figures.items()):
            png = tf.io.decode_png(tf.io.read_file(path), channels=4)
            tf.summary.image(name, png[tf.newaxis], step=step)
    writer.close()
    return run_dir


def read_scalars(run_dir):
    """`{tag: [(step, value), ...]}` of the event files in `run_dir`."""
    accumulator = event_accumulator.EventAccumulator(
        os.fspath(run_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    scalars = {}
    for tag in accumulator.Tags()[event_accumulator.TENSORS]:
        scalars[tag] = [
            (event.step, float(tf.make_ndarray(event.tensor_proto)))
            for event in accumulator.Tensors(tag)
        ]
    return scalars


def read_image_tags(run_dir):
    """The image tags of the event files in `run_dir`."""
    accumulator = event_accumulator.EventAccumulator(
        os.fspath(run_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return sorted(accumulator.Tags()[event_accumulator.TENSORS])


def command(log_dir):
    """The shell command that shows `log_dir` in TensorBoard."""
    return f"tensorboard --logdir {os.fspath(log_dir)}"


__all__ = [
    "FIGURES_RUN",
    "LOGS_DIR",
    "command",
    "fit_callback",
    "read_image_tags",
    "read_scalars",
    "write_figures",
]
