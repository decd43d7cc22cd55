"""Cross-task terms: each task code should hold only its own task."""

import doctest

from kfactor.lab import disentanglement as metrics
from kfactor.layers.factor_layers import TaskCode
from kfactor.objective import cross_task
from kfactor.objective import losses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures

NUM_CLASSES = {"a": 3, "b": 4}


def outputs_with(codes, num_classes=None):
    num_classes = num_classes or NUM_CLASSES
    batch = next(iter(codes.values())).shape[0]
    return losses.FactorOutputs(
        teacher_logits={},
        teacher_features=[],
        common_features=[],
        common_code=None,
        task_codes={t: TaskCode(c, c, None) for t, c in codes.items()},
        logits={t: tf.zeros((batch, k)) for t, k in num_classes.items()},
        aux_logits={},
    )


def test_gradient_reversal_reverses_and_scales_the_gradient():
    x = tf.constant([[1.0, -2.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(
            tf.constant([[3.0, 5.0]]) * cross_task.GradientReversal(0.5)(x)
        )
    np.testing.assert_allclose(tape.gradient(y, x), [[-1.5, -2.5]])
    np.testing.assert_array_equal(cross_task.GradientReversal(2.0)(x), x)


def numpy_between_class_fraction(codes, labels, k):
    centred = codes - codes.mean(0)
    between = sum(
        (labels == c).sum() * centred[labels == c].mean(0) ** 2
        for c in range(k)
        if (labels == c).any()
    )
    return np.mean(between / (centred**2).sum(0))


def test_between_class_fraction_matches_numpy_and_its_extremes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 64)
    codes = rng.normal(size=(64, 5)).astype("float32")
    got = float(cross_task.between_class_fraction(codes, labels, 4))
    assert got == pytest.approx(
        numpy_between_class_fraction(codes, labels, 4), rel=1e-4
    )
    # A code that is a function of the label: all of its variance.
    assert float(
        cross_task.between_class_fraction(np.eye(4)[labels], labels, 4)
    ) == pytest.approx(1.0, abs=1e-4)
    # Same class means: zero.
    balanced = np.repeat(np.arange(4), 2)
    symmetric = np.tile([[1.0], [-1.0]], (4, 1))
    assert float(
        cross_task.between_class_fraction(symmetric, balanced, 4)
    ) == pytest.approx(0.0, abs=1e-6)


def test_between_class_fraction_of_independent_codes_is_its_noise_floor():
    rng = np.random.default_rng(1)
    values = [
        float(
            cross_task.between_class_fraction(
                rng.normal(size=(64, 8)), rng.integers(0, 8, 64), 8
            )
        )
        for _ in range(50)
    ]
    assert np.mean(values) == pytest.approx(7 / 63, rel=0.15)


def test_adversary_pairs_skip_own_task_and_excluded_pairs():
    rng = np.random.default_rng(2)
    codes = {t: rng.normal(size=(8, 6)).astype("float32") for t in "abc"}
    term = cross_task.CrossTaskAdversary(exclude=[("c", "a")])
    term.build(outputs_with(codes))
    assert term._pairs == [("a", "b"), ("b", "a"), ("c", "b")]
    assert [h.name for h in term.layers[1:]] == [
        "adversary_a_to_b",
        "adversary_b_to_a",
        "adversary_c_to_b",
    ]


def test_confusion_trains_heads_on_the_labels_and_codes_toward_uniform():
    rng = np.random.default_rng(3)
    codes = {t: tf.constant(rng.normal(size=(16, 6)), "float32") for t in "ab"}
    labels = {"a": rng.integers(0, 3, 16), "b": rng.integers(0, 4, 16)}
    term = cross_task.CrossTaskAdversary(reversal=2.0)
    outputs = outputs_with(codes)
    term.build(outputs)
    head = term.layers[1]  # a -> b
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(codes["a"])
        loss = term.compute_loss(outputs, labels)
        logits = head(codes["a"])
        fit = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(
                labels["b"], logits, from_logits=True
            )
        )
        uniform = -tf.reduce_mean(tf.nn.log_softmax(logits))
    pairs = 2.0  # the term is the mean over the two pairs
    # Heads learn from the labels only; the code only from the confusion.
    np.testing.assert_allclose(
        tape.gradient(loss, head.kernel.value) * pairs,
        tape.gradient(fit, head.kernel.value),
        rtol=1e-5,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        tape.gradient(loss, codes["a"]) * pairs,
        2.0 * tape.gradient(uniform, codes["a"]),
        rtol=1e-5,
        atol=1e-7,
    )


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: cross_task.CrossTaskAdversary(mode="gan"), "Expected mode"),
        (lambda: cross_task.CrossTaskAdversary(reversal=-1), "reversal >= 0"),
        (lambda: cross_task.GradientReversal(-1.0), "scale >= 0"),
        (
            lambda: cross_task.CrossTaskAdversary(exclude=[("a",)]),
            "pairs",
        ),
    ],
)
def test_bad_options_raise_clear_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_all_pairs_excluded_is_an_error():
    codes = {t: np.zeros((4, 2), "float32") for t in "ab"}
    term = cross_task.CrossTaskAdversary(exclude=[("a", "b"), ("b", "a")])
    with pytest.raises(ValueError, match="no .* pair left"):
        term.build(outputs_with(codes))


def test_with_one_task_the_adversary_is_a_zero_term():
    factorizer = fixtures.tiny_factorizer(tasks=["row"], adversary_weight=1.0)
    term = factorizer.factor_losses[-1]
    assert term.name == "adversary" and term.layers == []
    images, labels = fixtures.blob_images(4)
    outputs = factorizer._forward(images, training=False)
    assert float(term.compute_loss(outputs, labels)) == 0.0


@pytest.fixture(scope="module")
def blob_teacher():
    keras.utils.set_random_seed(1)
    teacher = fixtures.tiny_teacher()
    return fixtures.train_teacher(teacher, fixtures.blob_dataset(512), epochs=4)


def row_code_reads_col(teacher, **options):
    """Accuracy of a linear probe reading `col` from the row code's mean,
    after a short factorization; and the factor networks' accuracies."""
    keras.utils.set_random_seed(3)
    factorizer = fixtures.tiny_factorizer(teacher, **options)
    factorizer.compile(optimizer=keras.optimizers.Adam(3e-3))
    factorizer.fit(fixtures.blob_dataset(512), epochs=8, verbose=0)
    train_x, train_y = fixtures.blob_images(512, seed=5)
    test_x, test_y = fixtures.blob_images(512, seed=6)

    def mean(images):
        code = factorizer.task_factors["row"].encode(images, training=False)
        return np.asarray(code.mean)

    probe = metrics.linear_probe(
        mean(train_x), train_y["col"], mean(test_x), test_y["col"]
    )
    logits = factorizer(test_x)
    accuracy = {
        t: float(np.mean(np.argmax(logits[t], -1) == test_y[t]))
        for t in ("row", "col")
    }
    return probe.accuracy - probe.chance, accuracy


def test_cross_task_term_removes_what_a_task_code_carries_for_free(
    blob_teacher,
):
    # The row code sees the whole image, so it carries the column for free.
    # The term alone (no hint): with the default hint beside it the same
    # fit reads 0.40 above chance, not 0.24 (0.72 without the term).
    leak_before, _ = row_code_reads_col(
        blob_teacher, adversary_weight=0.0, hint_weight=0.0
    )
    leak_after, accuracy = row_code_reads_col(
        blob_teacher, adversary_weight=3.0, hint_weight=0.0
    )
    assert leak_before > 0.6
    assert leak_after < 0.5 * leak_before
    assert min(accuracy.values()) > 0.95  # and the factors still work


def test_docstring_examples_run():
    results = doctest.testmod(cross_task, extraglobs={"tf": tf})
    assert results.attempted >= 1 and results.failed == 0
