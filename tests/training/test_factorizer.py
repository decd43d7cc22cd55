"""Factorizer: training behaviour, Keras integration and input errors."""

import doctest
import glob
import os

import kfactor
from kfactor.training import factorizer
from kfactor.zoo.simple_conv import NARROW_WIDTHS
from kfactor.zoo.simple_conv import multitask_teacher
from kfactor.zoo.simple_conv import simple_conv64

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures


@pytest.fixture(scope="module")
def trained_teacher():
    keras.utils.set_random_seed(1)
    teacher = fixtures.tiny_teacher()
    return fixtures.train_teacher(teacher, fixtures.blob_dataset(512), epochs=4)


def weights_of(layer):
    return [np.array(w) for w in layer.weights]


def changed(before, after):
    return any(not np.array_equal(b, a) for b, a in zip(before, after))


def test_fit_trains_factors_and_never_touches_the_teacher(trained_teacher):
    factorizer = fixtures.tiny_factorizer(trained_teacher)
    factorizer.compile(optimizer=keras.optimizers.Adam(3e-3))
    teacher_before = weights_of(trained_teacher)
    common_before = weights_of(factorizer.common)
    tasks_before = {
        t: weights_of(f) for t, f in factorizer.task_factors.items()
    }
    proj_before = weights_of(factorizer.projections[0])

    train, test = fixtures.blob_dataset(512), fixtures.blob_dataset(256, seed=1)
    history = factorizer.fit(train, epochs=5, validation_data=test, verbose=0)

    for before, after in zip(teacher_before, weights_of(trained_teacher)):
        np.testing.assert_array_equal(before, after)
    assert not any(v.trainable for v in trained_teacher.weights)
    assert changed(common_before, weights_of(factorizer.common))
    assert changed(proj_before, weights_of(factorizer.projections[0]))
    for task, before in tasks_before.items():
        assert changed(before, weights_of(factorizer.task_factors[task]))

    logs = history.history
    for key in (
        "loss",
        "infomax_loss",
        "infomin_loss",
        "kd_loss",
        "cls_loss",
        "aux_loss",
        "row_accuracy",
        "col_accuracy",
    ):
        assert key in logs and f"val_{key}" in logs
        assert np.all(np.isfinite(logs[key]))
    # Every task clearly beats chance (0.25) on held-out data.
    assert logs["val_row_accuracy"][-1] > 0.6
    assert logs["val_col_accuracy"][-1] > 0.6
    assert logs["loss"][-1] < logs["loss"][0]

    # The standalone factor network is the factorizer's prediction.
    images, _ = fixtures.blob_images(16, seed=3)
    predicted = factorizer.predict(images, verbose=0)
    for task in ("row", "col"):
        network = factorizer.factor_network(task)
        np.testing.assert_allclose(
            network.predict(images, verbose=0), predicted[task], atol=1e-6
        )


def test_xla_gives_the_eager_loss_on_a_fixed_batch(trained_teacher):
    batch = fixtures.blob_dataset(64, batch_size=64).take(1)
    results = []
    for options in ({"run_eagerly": True}, {"jit_compile": True}):
        keras.utils.set_random_seed(4)
        factorizer = fixtures.tiny_factorizer(trained_teacher)
        factorizer.compile(**options)
        results.append(factorizer.evaluate(batch, verbose=0, return_dict=True))
    eager, xla = results
    assert sorted(eager) == sorted(xla)
    for key, value in eager.items():
        np.testing.assert_allclose(xla[key], value, rtol=1e-4, atol=1e-5)


def test_tensorboard_event_files_hold_every_loss_term(
    trained_teacher, tmp_path
):
    factorizer = fixtures.tiny_factorizer(trained_teacher)
    factorizer.compile()
    factorizer.fit(
        fixtures.blob_dataset(64),
        validation_data=fixtures.blob_dataset(32),
        epochs=1,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(str(tmp_path))],
    )
    tags = set()
    for path in glob.glob(
        os.path.join(tmp_path, "**", "events.*"), recursive=True
    ):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    for term in ("infomax", "infomin", "kd", "cls", "aux"):
        assert f"epoch_{term}_loss" in tags
    assert "epoch_row_accuracy" in tags and "epoch_loss" in tags


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch
        self.saved = None

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch - 1:
            self.saved = [np.array(w) for w in self.model.weights]

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("simulated crash")


class RecordStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = [np.array(w) for w in self.model.weights]


def test_backup_and_restore_resumes_after_a_crash(trained_teacher, tmp_path):
    data = fixtures.blob_dataset(64)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    interrupt = Interrupt(at_epoch=2)
    factorizer = fixtures.tiny_factorizer(trained_teacher)
    factorizer.compile()
    with pytest.raises(RuntimeError, match="simulated crash"):
        factorizer.fit(data, epochs=4, verbose=0, callbacks=[backup, interrupt])

    keras.utils.set_random_seed(123)  # a fresh process would re-initialise
    resumed = fixtures.tiny_factorizer(trained_teacher)
    resumed.compile()
    start = RecordStart()
    history = resumed.fit(
        data,
        epochs=4,
        verbose=0,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
            start,
        ],
    )
    assert history.epoch == [2, 3]
    for saved, restored in zip(interrupt.saved, start.weights):
        np.testing.assert_array_equal(saved, restored)


def test_early_stopping_and_terminate_on_nan(trained_teacher):
    # Opted out of kfactor's own stop (tests/test_validation.py).
    factorizer = fixtures.tiny_factorizer(
        trained_teacher, stop_on_nonfinite_loss=False
    )
    factorizer.compile()
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=0, min_delta=1e9
    )
    history = factorizer.fit(
        fixtures.blob_dataset(64),
        validation_data=fixtures.blob_dataset(32),
        epochs=5,
        verbose=0,
        callbacks=[stop],
    )
    assert len(history.epoch) == 2  # stops once the huge delta is missed

    # A NaN weight (a NaN pixel is not enough: oneDNN's ReLU maps it to 0).
    kernel = factorizer.common.trainable_weights[-2]
    kernel.assign(np.full(kernel.shape, np.nan, kernel.dtype))
    history = factorizer.fit(
        fixtures.blob_dataset(64),
        epochs=3,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    assert len(history.epoch) == 1
    assert np.isnan(history.history["loss"][0])


def test_objective_options_reach_the_loss_objects(trained_teacher):
    factorizer = fixtures.tiny_factorizer(
        trained_teacher,
        beta=0.0,
        kd="soft_target",
        kd_temperature=2.0,
        infomax_estimator="infonce",
        hint_weight=0.0,
        adversary_weight=0.0,
    )
    names = [loss.name for loss in factorizer.factor_losses]
    assert names == ["infomax", "kd", "cls", "aux"]
    assert factorizer.factor_losses[0].estimator == "infonce"
    assert factorizer.factor_losses[1].temperature == 2.0
    with pytest.raises(ValueError, match="either losses"):
        fixtures.tiny_factorizer(
            trained_teacher,
            losses=[kfactor.objective.losses.TaskLoss()],
            beta=0.1,
        )


def test_sizes_are_inferred_from_teacher_and_common(trained_teacher):
    factorizer = fixtures.tiny_factorizer(trained_teacher)
    assert factorizer.code_dim == 6
    assert factorizer.num_classes == {"row": 4, "col": 4}
    for factor in factorizer.task_factors.values():
        assert factor.code_dim == 6 and factor.num_classes == 4
    with pytest.raises(ValueError, match="num_classes=4"):
        kfactor.Factorizer(
            trained_teacher,
            fixtures.tiny_encoder(),
            {
                "row": kfactor.TaskFactor(
                    fixtures.tiny_encoder(None), num_classes=7
                )
            },
        )


def test_multi_level_infomax_taps_named_layers(trained_teacher):
    factorizer = fixtures.tiny_factorizer(
        trained_teacher,
        teacher_features=["conv3", "latent"],
        common_features=["conv3", "latent"],
    )
    assert [p.units for p in factorizer.projections] == [16, 6]
    factorizer.compile()
    logs = factorizer.fit(fixtures.blob_dataset(64), epochs=1, verbose=0)
    assert np.isfinite(logs.history["infomax_loss"][0])
    with pytest.raises(ValueError, match="No layer 'conv9'"):
        fixtures.tiny_factorizer(
            trained_teacher,
            teacher_features=["conv9"],
            common_features=["conv3"],
        )


def test_a_subclassed_teacher_is_accepted():
    class DictTeacher(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder = fixtures.tiny_encoder()
            self.head = keras.layers.Dense(4)

        def call(self, images):
            return {"row": self.head(self.encoder(images))}

    teacher = DictTeacher()
    teacher(np.zeros((1, *fixtures.TINY_SHAPE)))
    factorizer = fixtures.tiny_factorizer(teacher, tasks=["row"])
    factorizer.compile()
    logs = factorizer.fit(fixtures.blob_dataset(32), epochs=1, verbose=0)
    assert np.isfinite(logs.history["loss"][0])


def test_config_round_trip_rebuilds_the_same_factorizer(trained_teacher):
    factorizer = fixtures.tiny_factorizer(
        trained_teacher, beta=0.0, kd="soft_target", weight_decay=0.0
    )
    config = factorizer.get_config()
    clone = fixtures.assert_config_roundtrip(factorizer)
    assert config == factorizer.get_config()  # from_config left it whole
    assert clone.task_names == factorizer.task_names
    assert [type(loss) for loss in clone.factor_losses] == [
        type(loss) for loss in factorizer.factor_losses
    ]
    assert clone.weight_decay == 0.0
    clone.set_weights(factorizer.get_weights())
    images, _ = fixtures.blob_images(8)
    expected, got = factorizer(images), clone(images)
    for task in factorizer.task_names:
        np.testing.assert_allclose(got[task], expected[task], atol=1e-6)
    clone.compile()
    logs = clone.fit(fixtures.blob_dataset(32), epochs=1, verbose=0)
    assert np.isfinite(logs.history["loss"][0])


# === Errors ===


def test_teacher_without_dict_outputs_is_refused():
    images = keras.Input(fixtures.TINY_SHAPE)
    plain = keras.Model(
        images, keras.layers.Dense(3)(keras.layers.Flatten()(images))
    )
    with pytest.raises(ValueError, match=r"dict \{task_name: logits\}"):
        fixtures.tiny_factorizer(plain, tasks=["row"])


def test_unknown_task_is_refused(trained_teacher):
    with pytest.raises(ValueError, match=r"\['size'\] are not outputs"):
        fixtures.tiny_factorizer(trained_teacher, tasks=["row", "size"])


def test_labels_missing_a_task_are_refused(trained_teacher):
    factorizer = fixtures.tiny_factorizer(trained_teacher)
    factorizer.compile()
    images, labels = fixtures.blob_images(32)
    del labels["col"]
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)
    with pytest.raises(ValueError, match=r"missing tasks \['col'\]"):
        factorizer.fit(data, epochs=1, verbose=0)


def test_wrong_image_rank_is_refused(trained_teacher):
    factorizer = fixtures.tiny_factorizer(trained_teacher)
    factorizer.compile()
    images, labels = fixtures.blob_images(32)
    data = tf.data.Dataset.from_tensor_slices((images[..., 0], labels)).batch(8)
    with pytest.raises(ValueError, match="Expected images shaped"):
        factorizer.fit(data, epochs=1, verbose=0)


def test_non_model_teacher_is_refused():
    with pytest.raises(TypeError, match="keras.Model"):
        kfactor.Factorizer(lambda x: x, fixtures.tiny_encoder(), {})


def test_docstring_examples_run():
    globs = {
        "multitask_teacher": multitask_teacher,
        "simple_conv64": simple_conv64,
        "NARROW_WIDTHS": NARROW_WIDTHS,
    }
    results = doctest.testmod(factorizer, extraglobs=globs)
    assert results.attempted >= 3 and results.failed == 0
