"""Single-task factorization of stock Keras classifiers."""

import doctest

import kfactor
from kfactor.layers.features import head_input
from kfactor.zoo import applications
from kfactor.zoo.simple_conv import NARROW_WIDTHS
from kfactor.zoo.wrn import wide_resnet

import keras
import numpy as np
import pytest

MOBILENET = dict(input_shape=(32, 32, 3), alpha=0.35, weights=None)


def images(num, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (num, size, size, 3)).astype("float32")


def color_data(num, size=16, seed=0):
    """3 classes: which color channel is bright."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, num).astype("int32")
    x = rng.uniform(0, 0.3, (num, size, size, 3)).astype("float32")
    x[np.arange(num), :, :, labels] += 0.6
    return x, labels


def small_classifier(last):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    x = keras.layers.Dense(4, name="features")(x)
    return keras.Model(inputs, last(x))


class Opaque(keras.Model):
    def __init__(self):
        super().__init__()
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.dense = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.dense(self.pool(x))


# === as_task_teacher ===


def test_applications_classifier_gives_logits_of_its_softmax():
    classifier = keras.applications.MobileNetV2(classes=3, **MOBILENET)
    teacher = applications.as_task_teacher(classifier, task="label")
    x = images(4)
    logits = teacher(x)["label"]
    np.testing.assert_allclose(
        keras.ops.softmax(logits), classifier(x), atol=1e-6
    )
    copy = teacher.get_layer("predictions_logits")
    original = classifier.get_layer("predictions")
    for a, b in zip(copy.get_weights(), original.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The graph is shared: stages by name, "auto" InfoMax reads the pool.
    assert applications.stage_layer_names(teacher) == [
        "block_15_add",
        "block_16_project_BN",
        "out_relu",
    ]
    assert tuple(head_input(teacher).shape) == (None, 1280)


@pytest.mark.parametrize(
    "last",
    [
        lambda x: keras.layers.Softmax()(keras.layers.Dense(3)(x)),
        lambda x: keras.layers.Activation("softmax")(keras.layers.Dense(3)(x)),
        lambda x: keras.layers.Dense(3, activation="softmax")(x),
    ],
    ids=["softmax_layer", "activation_layer", "dense_softmax"],
)
def test_softmax_endings_are_undone(last):
    classifier = small_classifier(last)
    teacher = applications.as_task_teacher(classifier, task="y")
    x = images(5, size=8)
    logits = teacher(x)["y"]
    np.testing.assert_allclose(
        keras.ops.softmax(logits), classifier(x), atol=1e-6
    )
    assert float(np.abs(np.sum(logits, -1) - 1.0).max()) > 1e-3


def test_linear_classifier_is_used_as_is():
    classifier = small_classifier(lambda x: keras.layers.Dense(3)(x))
    teacher = applications.as_task_teacher(classifier)
    x = images(3, size=8)
    np.testing.assert_array_equal(teacher(x)["label"], classifier(x))
    assert tuple(head_input(teacher).shape) == (None, 4)


def test_opaque_classifier_needs_to_say_what_it_outputs():
    classifier = Opaque()
    classifier.build((None, 8, 8, 3))
    with pytest.raises(ValueError, match="outputs="):
        applications.as_task_teacher(classifier)
    x = images(3, size=8)
    teacher = applications.as_task_teacher(
        classifier, outputs="probabilities", input_shape=(8, 8, 3)
    )
    logits = teacher(x)["label"]
    np.testing.assert_allclose(
        keras.ops.softmax(logits), classifier(x), atol=1e-6
    )
    # The InfoMax feature of an opaque teacher is its logits.
    assert tuple(head_input(teacher).shape) == (None, 3)
    with pytest.raises(ValueError, match="input_shape="):
        applications.as_task_teacher(classifier, outputs="logits")
    raw = applications.as_task_teacher(
        classifier, outputs="logits", input_shape=(8, 8, 3)
    )
    np.testing.assert_allclose(raw(x)["label"], classifier(x), atol=1e-7)


def test_teacher_input_errors():
    sigmoid = small_classifier(
        lambda x: keras.layers.Dense(3, activation="sigmoid")(x)
    )
    with pytest.raises(ValueError, match="outputs='logits'"):
        applications.as_task_teacher(sigmoid)
    inputs = keras.Input((4,))
    two = keras.Model(inputs, [keras.layers.Dense(2)(inputs)] * 2)
    with pytest.raises(ValueError, match="single-output"):
        applications.as_task_teacher(two)
    with pytest.raises(TypeError, match="keras.Model"):
        applications.as_task_teacher(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="outputs in"):
        applications.as_task_teacher(sigmoid, outputs="softmax")


# === Encoders and stages ===


def test_applications_encoder_is_one_flat_graph():
    encoder = applications.applications_encoder(
        keras.applications.MobileNetV2,
        (32, 32, 3),
        alpha=0.35,
        latent_dim=8,
        preprocessing=keras.layers.Rescaling(2.0, offset=-1.0, name="scale"),
        name="common",
    )
    names = [layer.name for layer in encoder.layers]
    assert names[:2] == ["images", "scale"] and "block_15_add" in names
    assert encoder.output_shape == (None, 8)
    assert encoder.name == "common"
    assert applications.stage_layer_names(encoder, 2) == [
        "block_16_project_BN",
        "out_relu",
    ]


def test_encoder_input_errors():
    build = applications.applications_encoder
    with pytest.raises(ValueError, match="never downloads"):
        build("MobileNetV2", (32, 32, 3), weights="imagenet")
    with pytest.raises(ValueError, match="pooling"):
        build("MobileNetV2", (32, 32, 3), pooling=None)
    with pytest.raises(ValueError, match="No keras.applications.Nope"):
        build("Nope", (32, 32, 3))
    with pytest.raises(ValueError, match="input_shape"):
        build("MobileNetV2", (32, 32))


def test_stage_layers_of_other_models():
    conv = kfactor.zoo.simple_conv64(widths=NARROW_WIDTHS)
    # One stage per resolution; the last layer at each.
    assert applications.stage_layer_names(conv) == ["conv4", "conv5", "conv6"]
    wrn = wide_resnet(depth=10, width=1, input_shape=(16, 16, 3))
    assert applications.stage_layer_names(wrn) == [
        "stage1_out",
        "stage2_out",
        "final_relu",
    ]
    with pytest.raises(ValueError, match="num_stages <= 3"):
        applications.stage_layer_names(wrn, 4)
    opaque = Opaque()
    opaque.build((None, 8, 8, 3))
    with pytest.raises(ValueError, match="layer names yourself"):
        applications.stage_layer_names(opaque)


# === Factorization ===


def test_factorize_applications_classifier_with_three_infomax_levels(eager):
    classifier = keras.applications.MobileNetV2(classes=3, **MOBILENET)
    teacher = applications.as_task_teacher(classifier)
    common = applications.applications_encoder(
        "MobileNetV2", (32, 32, 3), alpha=0.35, name="common"
    )
    task = kfactor.zoo.simple_conv64(
        None, widths=(8, 16, 16), input_shape=(32, 32, 3), name="task"
    )
    factorizer = kfactor.Factorizer(
        teacher,
        common=common,
        tasks={"label": task},
        teacher_features=applications.stage_layer_names(teacher),
        common_features=applications.stage_layer_names(common),
        kd="soft_target",
        kd_temperature=10.0,
    )
    widths = [p.hidden.kernel.shape[0] for p in factorizer.projections]
    assert widths == [56, 112, 1280]
    x = images(16)
    labels = {"label": (x[..., 0].mean((1, 2)) > 0.5).astype("int32")}
    teacher_before = [np.array(w) for w in teacher.weights]
    common_before = [np.array(w) for w in common.weights]
    factorizer.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = factorizer.fit(x, labels, batch_size=8, epochs=1, verbose=0)
    for values in history.history.values():
        assert np.all(np.isfinite(values))
    for before, after in zip(teacher_before, teacher.weights):
        np.testing.assert_array_equal(before, after)
    assert any(
        not np.array_equal(b, a) for b, a in zip(common_before, common.weights)
    )
    network = factorizer.factor_network("label")
    assert network(x[:2]).shape == (2, 3)


def test_factorized_wide_resnet_classifier_learns(eager):
    x, y = color_data(128)
    x_val, y_val = color_data(64, seed=1)
    classifier = wide_resnet(
        depth=10,
        width=1,
        input_shape=(16, 16, 3),
        classes=3,
        classifier_activation="softmax",
    )
    classifier.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
    )
    classifier.fit(x, y, batch_size=32, epochs=2, verbose=0)
    teacher = applications.as_task_teacher(classifier)
    common = applications.applications_encoder(
        wide_resnet, (16, 16, 3), depth=10, width=1, name="common"
    )
    factorizer = kfactor.Factorizer(
        teacher,
        common=common,
        tasks={
            "label": kfactor.zoo.simple_conv64(
                None, widths=(8, 16, 16), input_shape=(16, 16, 3), name="task"
            )
        },
        teacher_features=applications.stage_layer_names(teacher),
        common_features=applications.stage_layer_names(common),
        kd="soft_target",
    )
    factorizer.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = factorizer.fit(
        x,
        {"label": y},
        batch_size=32,
        validation_data=(x_val, {"label": y_val}),
        epochs=2,
        verbose=0,
    ).history
    assert history["val_label_accuracy"][-1] >= 0.9
    assert history["loss"][-1] < history["loss"][0]


def test_docstring_examples_run():
    globs = {"keras": keras, **vars(applications)}
    results = doctest.testmod(applications, globs=globs)
    assert results.attempted >= 3 and results.failed == 0
