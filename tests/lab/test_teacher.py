"""The competent-teacher recipe, the VIB start, the KD and single-task
baselines, symmetry-aware orientation accuracy and the pretrained-teacher
checks."""

import dataclasses
import doctest
import json
import math

import kfactor
from kfactor.lab import baselines
from kfactor.lab import datasets as data_lib
from kfactor.lab import demo
from kfactor.lab import teacher as teacher_lib
from kfactor.lab.baselines import DistilledStudent
from kfactor.lab.baselines import SingleTaskNetworks
from kfactor.lab.disentanglement import symmetric_orientation_accuracy
from kfactor.lab.disentanglement import symmetric_orientation_matches
from kfactor.objective import losses
from kfactor.zoo.simple_conv import NARROW_WIDTHS

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures


def test_balanced_loss_weights_make_every_chance_level_ce_one():
    weights = teacher_lib.balanced_loss_weights(data_lib.DSPRITES_NUM_CLASSES)
    for task, classes in data_lib.DSPRITES_NUM_CLASSES.items():
        assert weights[task] * math.log(classes) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        teacher_lib.balanced_loss_weights({"a": 1})


def test_warmup_cosine_schedule_rises_then_decays_to_zero():
    schedule = teacher_lib.warmup_cosine_schedule(1e-2, total_steps=200)
    values = [float(schedule(step)) for step in (0, 5, 10, 100, 200)]
    assert values[0] == 0.0 and values[1] == pytest.approx(5e-3)
    assert values[2] == pytest.approx(1e-2)
    assert values[2] > values[3] > values[4] == pytest.approx(0.0, abs=1e-9)
    optimizer = teacher_lib.warmup_cosine_adam(1e-2, total_steps=200)
    assert isinstance(optimizer, keras.optimizers.Adam)
    with pytest.raises(ValueError, match="total_steps"):
        teacher_lib.warmup_cosine_adam(1e-3, 0)


def test_compile_teacher_weighs_tasks_by_one_over_log_classes():
    teacher = fixtures.tiny_teacher({"a": 2, "b": 8})
    teacher_lib.compile_teacher(teacher)
    images, labels = fixtures.blob_images(64)
    labels = {"a": labels["row"] % 2, "b": labels["col"]}
    logs = teacher.evaluate(images, labels, verbose=0, return_dict=True)
    expected = logs["a_loss"] / math.log(2) + logs["b_loss"] / math.log(8)
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="loss_weights"):
        teacher_lib.compile_teacher(teacher, loss_weights="uniform")


def test_batch_normalized_encoder_has_no_conv_bias_and_normalizes():
    encoder = kfactor.zoo.simple_conv64(
        8,
        widths=fixtures.TINY_WIDTHS,
        input_shape=fixtures.TINY_SHAPE,
        normalization="batch",
    )
    names = [layer.name for layer in encoder.layers]
    assert "conv1_bn" in names and "conv3_relu" in names
    assert encoder.get_layer("conv1").use_bias is False
    with pytest.raises(ValueError, match="normalization"):
        kfactor.zoo.simple_conv64(normalization="layer")


def test_initial_log_var_sets_the_starting_noise_and_round_trips():
    factor = kfactor.TaskFactor(
        fixtures.tiny_encoder(None),
        num_classes=3,
        code_dim=4,
        initial_log_var=-6.0,
    )
    factor.build(((None, *fixtures.TINY_SHAPE), (None, 4)))
    images = np.random.default_rng(0).uniform(size=(16, *fixtures.TINY_SHAPE))
    code = factor.encode(images.astype("float32"), training=True)
    log_var = np.asarray(code.log_var)
    # The kernel still adds a little of the features; the bias sets -6.
    assert np.mean(log_var) == pytest.approx(-6.0, abs=0.5)
    noise = np.asarray(code.sample) - np.asarray(code.mean)
    assert 0.01 < np.std(noise) < 0.2  # sigma = e^-3 ~ 0.05
    config = factor.get_config()
    assert config["initial_log_var"] == -6.0
    clone = kfactor.TaskFactor.from_config(config)
    clone.build(((None, *fixtures.TINY_SHAPE), (None, 4)))
    np.testing.assert_array_equal(
        np.asarray(clone.code_layer.bias)[4:], np.full(4, -6.0, "float32")
    )
    with pytest.raises(ValueError, match="variational task factors only"):
        kfactor.TaskFactor(
            fixtures.tiny_encoder(None), variational=False, initial_log_var=-6
        )
    with pytest.raises(ValueError, match=r"in \[-20, 5\]"):
        kfactor.TaskFactor(fixtures.tiny_encoder(None), initial_log_var=50)


def test_single_task_networks_train_independently():
    keras.utils.set_random_seed(0)
    teacher = fixtures.train_teacher(
        fixtures.tiny_teacher(), fixtures.blob_dataset(256), epochs=2
    )
    networks = SingleTaskNetworks(
        teacher,
        {t: fixtures.tiny_encoder(None, name=f"{t}_e") for t in ("row", "col")},
        code_dim=6,
    )
    networks.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = {
        t: [np.array(w) for w in n.weights]
        for t, n in networks.networks.items()
    }
    history = networks.fit(fixtures.blob_dataset(256), epochs=6, verbose=0)
    assert history.history["row_accuracy"][-1] > 0.6
    # No network reads another's weights: the "row" loss alone does not
    # move the "col" network.
    images, labels = fixtures.blob_images(32)
    with tf.GradientTape() as tape:
        logits = networks(images, training=True)
        row_loss = keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(
                labels["row"], logits["row"], from_logits=True
            )
        )
    grads = tape.gradient(
        row_loss, networks.networks["col"].trainable_variables
    )
    assert all(g is None for g in grads)
    for task, weights in before.items():
        after = [np.array(w) for w in networks.networks[task].weights]
        assert any(not np.array_equal(a, b) for a, b in zip(weights, after))
    code = networks.code("row", images)
    assert tuple(code.shape) == (32, 6)


def test_distilled_student_logs_its_terms_and_copies_its_teacher():
    keras.utils.set_random_seed(0)
    teacher = fixtures.train_teacher(
        fixtures.tiny_teacher(), fixtures.blob_dataset(128), epochs=1
    )
    twin = keras.models.clone_model(teacher)
    twin.set_weights(teacher.get_weights())
    student = DistilledStudent(teacher, twin, kd=losses.LogitsKD(0.5))
    student.compile()
    data = fixtures.blob_dataset(64)
    logs = student.evaluate(data, verbose=0, return_dict=True)
    # A student equal to its teacher has no KD loss; the total is CE + KD.
    assert logs["kd_loss"] == pytest.approx(0.0, abs=1e-10)
    assert logs["loss"] == pytest.approx(logs["cls_loss"] + logs["kd_loss"])
    history = student.fit(data, epochs=2, verbose=0).history
    assert {"loss", "cls_loss", "kd_loss", "row_accuracy", "col_accuracy"} <= (
        set(history)
    )
    assert history["kd_loss"][-1] > 0.0  # trained away from the teacher
    assert history["loss"][-1] < history["loss"][0]


def test_symmetry_aware_orientation_accuracy_on_known_cases():
    steps = np.arange(40)
    # Heart: only itself and the 0 / 2 pi duplicate.
    heart = [symmetric_orientation_matches([j], [0], [2])[0] for j in steps]
    assert np.flatnonzero(heart).tolist() == [0, 39]
    # Square: the nearest grid angle of every 90-degree turn: 9.75 steps
    # (10), 19.5 (19 and 20, both half a step off), 29.25 (29), 39 (39).
    square = [symmetric_orientation_matches([j], [0], [0])[0] for j in steps]
    assert np.flatnonzero(square).tolist() == [0, 10, 19, 20, 29, 39]
    # Ellipse: 180 degrees is 19.5 steps, both neighbours count.
    ellipse = [symmetric_orientation_matches([j], [0], [1])[0] for j in steps]
    assert np.flatnonzero(ellipse).tolist() == [0, 19, 20, 39]
    assert symmetric_orientation_accuracy([0, 5], [0, 6], [2, 2]) == 0.5
    with pytest.raises(ValueError, match=r"in \[0, 39\]"):
        symmetric_orientation_matches([40], [0], [0])
    with pytest.raises(ValueError, match="integer"):
        symmetric_orientation_matches([0.5], [0], [0])


def test_indices_outside_avoid_the_excluded_split():
    test = data_lib.dsprites_split(0, 5000, seed=0)[1]
    drawn = data_lib.indices_outside(test, 20000, seed=1)
    assert len(np.unique(drawn)) == 20000
    assert not np.intersect1d(drawn, test).size
    again = data_lib.indices_outside(test, 20000, seed=1)
    np.testing.assert_array_equal(drawn, again)
    with pytest.raises(ValueError, match="excluded"):
        data_lib.indices_outside(test, data_lib.DSPRITES_NUM_IMAGES, seed=0)


def write_fake_pretrained(tmp_path, config):
    info = {"config": demo.teacher_config(config)}
    info_path = tmp_path / "teacher.json"
    info_path.write_text(json.dumps(info))
    model_path = tmp_path / "teacher.keras"
    demo.build_teacher(config).save(model_path)
    return str(model_path), str(info_path)


def test_pretrained_teacher_refuses_runs_whose_test_images_it_saw(tmp_path):
    config = demo.DemoConfig(
        num_train=2000,
        num_test=500,
        teacher_num_train=300000,
        widths=(4, 4, 4, 4, 4, 4),
        latent_dim=8,
    )
    model_path, info_path = write_fake_pretrained(tmp_path, config)
    teacher, _ = demo.load_pretrained_teacher(config, model_path, info_path)
    assert sorted(teacher.output) == sorted(data_lib.DSPRITES_TASKS)
    # Another seed draws another test split, which the teacher has seen.
    other = dataclasses.replace(config, seed=1)
    with pytest.raises(ValueError, match="--train_teacher"):
        demo.load_pretrained_teacher(other, model_path, info_path)
    wider = dataclasses.replace(config, latent_dim=16)
    with pytest.raises(ValueError, match="latent_dim=8"):
        demo.load_pretrained_teacher(wider, model_path, info_path)
    with pytest.raises(ValueError, match="missing"):
        demo.load_pretrained_teacher(config, model_path + ".x", info_path)


def test_shipped_teacher_fits_the_default_demo():
    config = demo.DemoConfig()
    teacher, info = demo.load_pretrained_teacher(config)
    assert info["config"] == demo.teacher_config(config)
    # The bars for a teacher that knows its tasks (held-out split).
    bars = {
        "shape": 0.99,
        "scale": 0.98,
        "pos_x": 0.95,
        "pos_y": 0.95,
        "orientation": 0.45,
    }
    for task, bar in bars.items():
        assert info["test_accuracy"][task] >= bar, task
    assert sorted(teacher.output) == sorted(bars)


def test_common_encoder_can_start_as_the_teachers_backbone():
    teacher = fixtures.tiny_teacher()
    common = fixtures.tiny_encoder(name="common_encoder")
    copied = kfactor.zoo.simple_conv.copy_weights_by_name(teacher, common)
    assert copied == ["conv1", "conv2", "conv3", "latent"]
    images = np.random.default_rng(0).uniform(size=(4, *fixtures.TINY_SHAPE))
    latent = keras.Model(teacher.input, teacher.get_layer("latent").output)
    np.testing.assert_allclose(
        np.asarray(common(images)), np.asarray(latent(images)), atol=1e-6
    )
    wider = fixtures.tiny_encoder(latent_dim=9, name="wider")
    with pytest.raises(ValueError, match="latent .shapes"):
        kfactor.zoo.simple_conv.copy_weights_by_name(teacher, wider)


def test_docstring_examples_run():
    globs = {
        "multitask_teacher": kfactor.zoo.multitask_teacher,
        "simple_conv64": kfactor.zoo.simple_conv64,
        "NARROW_WIDTHS": NARROW_WIDTHS,
    }
    results = doctest.testmod(baselines, extraglobs=globs)
    assert results.attempted >= 3 and results.failed == 0


def untrained_single_task_networks():
    keras.utils.set_random_seed(4)
    return SingleTaskNetworks(
        fixtures.tiny_teacher(),
        {t: fixtures.tiny_encoder(None, name=f"{t}_e") for t in ("row", "col")},
        code_dim=6,
    )


def test_single_task_codes_are_projected_in_place_like_task_codes():
    networks = untrained_single_task_networks()
    images, labels = fixtures.blob_images(256)
    before = {t: np.asarray(networks.code(t, images)) for t in ("row", "col")}
    predictions = {
        t: np.argmax(np.asarray(logits), -1)
        for t, logits in networks(images).items()
    }

    subspaces = baselines.project_single_task_codes(
        networks,
        fixtures.blob_dataset(256),
        max_examples=256,
        max_accuracy_drop=0.05,
    )

    assert sorted(subspaces) == ["col", "row"]
    for task, subspace in subspaces.items():
        # The recorded full-code accuracy is the network's own: its head
        # reads the code alone, with nothing added.
        assert subspace.full_accuracy == pytest.approx(
            np.mean(predictions[task] == labels[task])
        )
        assert 1 <= subspace.kept <= 6
        assert subspace.accuracy >= subspace.full_accuracy - 0.05 - 1e-9
        after = np.asarray(networks.code(task, images))
        np.testing.assert_allclose(
            after, subspace.project(before[task]), atol=1e-4
        )
        # Past the kept directions the code holds nothing.
        spectrum = np.linalg.svd(after - after.mean(0), compute_uv=False)
        assert np.all(spectrum[subspace.kept :] < 1e-4 * spectrum[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_accuracy_drop": 1.0}, "max_accuracy_drop"),
        ({"max_examples": 0}, "max_examples"),
    ],
)
def test_single_task_projection_refuses_bad_arguments(kwargs, match):
    networks = untrained_single_task_networks()
    weights = [w.numpy() for w in networks.weights]

    with pytest.raises(ValueError, match=match):
        baselines.project_single_task_codes(
            networks, fixtures.blob_dataset(64), **kwargs
        )
    for saved, weight in zip(weights, networks.weights):
        np.testing.assert_array_equal(saved, weight.numpy())


def test_single_task_projection_needs_each_tasks_labels():
    images, labels = fixtures.blob_images(64)
    only_row = tf.data.Dataset.from_tensor_slices(
        (images, {"row": labels["row"]})
    ).batch(32)
    networks = untrained_single_task_networks()
    weights = [w.numpy() for w in networks.weights]

    with pytest.raises(ValueError, match=r"holding the tasks \['col'\]"):
        baselines.project_single_task_codes(networks, only_row)
    for saved, weight in zip(weights, networks.weights):
        np.testing.assert_array_equal(saved, weight.numpy())
