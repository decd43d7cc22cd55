"""TensorBoard: fit's scalars and the report's figures, read back from disk.

The event files are read with TensorBoard's own reader (`EventAccumulator`).
"""

import json
import os

from kfactor.lab.evaluation import tensorboard

import keras

from tests import fixtures

HEALTH = ("common_cosine", "common_participation_ratio")


def health_tags(tasks):
    return [*HEALTH, *(f"{task}_kl" for task in tasks)]


def test_a_users_own_tensorboard_callback_gets_the_health_metrics(tmp_path):
    factorizer = fixtures.tiny_factorizer()
    factorizer.compile()
    data = fixtures.blob_dataset(64, batch_size=32)
    epochs = 3
    factorizer.fit(
        data,
        epochs=epochs,
        validation_data=data,
        verbose=0,
        shuffle=False,
        callbacks=[keras.callbacks.TensorBoard(str(tmp_path))],
    )
    tasks = factorizer.task_names
    for run in ("train", "validation"):
        scalars = tensorboard.read_scalars(tmp_path / run)
        for name in [*health_tags(tasks), "loss", "infomax_loss"]:
            steps = [step for step, _ in scalars[f"epoch_{name}"]]
            assert steps == list(range(epochs)), (run, name)
        for task in tasks:
            assert f"epoch_{task}_accuracy" in scalars


def test_the_demo_writes_scalars_figures_and_says_how_to_look(demo_run):
    with open(demo_run / "report.json") as f:
        report = json.load(f)
    logs = demo_run / tensorboard.LOGS_DIR
    assert report["tensorboard_logdir"] == str(logs)
    epochs = report["config"]["factor_epochs"]
    tasks = list(report["tasks"])
    for run in ("train", "validation"):
        scalars = tensorboard.read_scalars(logs / "factorization" / run)
        wanted = [*health_tags(tasks), *(f"{t}_accuracy" for t in tasks)]
        wanted += [t[len("epoch_") :] for t in scalars if t.endswith("_loss")]
        assert len(wanted) > len(health_tags(tasks)) + len(tasks)  # losses
        for name in wanted:
            steps = [step for step, _ in scalars[f"epoch_{name}"]]
            assert steps == list(range(epochs)), (run, name)
    images = tensorboard.read_image_tags(logs / tensorboard.FIGURES_RUN)
    assert images == sorted(report["figures"])
    assert os.path.isdir(logs)
