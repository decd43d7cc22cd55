"""Bad input never passes silently: kfactor's checks at its entry points.

Each test gives one bad input and asserts the error type and the words that
name the fix (issue 14). Most fits run eagerly (`eager`): tracing a tiny
model costs more than the step; one test runs the traced step, whose
`tf.debugging` asserts `Factorizer.fit` turns back into kfactor errors.
"""

import doctest

from kfactor import validation
from kfactor.data import array_dataset

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures

NonFiniteError = validation.NonFiniteError


@pytest.fixture(scope="module")
def factorizer():
    keras.utils.set_random_seed(3)
    factorizer = fixtures.tiny_factorizer()
    factorizer.compile()
    return factorizer


def dataset(images, labels, batch_size=8):
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(
        batch_size
    )


def blobs(num=16):
    images, labels = fixtures.blob_images(num)
    return images, {t: v.copy() for t, v in labels.items()}


def weights_of(model):
    return [np.array(v) for v in model.trainable_variables]


# === Factorizer.fit: labels ===


@pytest.mark.parametrize("bad_label", [99, 4, -1])
def test_fit_refuses_labels_outside_the_class_range(
    factorizer, eager, bad_label
):
    images, labels = blobs()
    labels["row"][3] = bad_label
    with pytest.raises(ValueError, match=r"task 'row' in \[0, 4\).*0\.\.3"):
        factorizer.fit(dataset(images, labels), verbose=0)


def test_fit_refuses_float_labels(factorizer):
    images, labels = blobs()
    labels["row"] = labels["row"] + 0.5
    with pytest.raises(ValueError, match="integer class indices.*cast"):
        factorizer.fit(dataset(images, labels), verbose=0)


def test_traced_step_fails_cleanly_and_the_next_fit_trains():
    """A failed trace once left "Creating variables on a non-first call";
    the traced step's asserts become ValueErrors, before any update."""
    factorizer = fixtures.tiny_factorizer()
    factorizer.compile()
    images, labels = blobs()
    del labels["col"]
    with pytest.raises(ValueError, match=r"missing tasks \['col'\]"):
        # A generator has no element_spec check: it fails in the trace.
        factorizer.fit(
            tf.data.Dataset.from_generator(
                lambda: iter([(images, labels)]),
                output_signature=(
                    tf.TensorSpec((None, 16, 16, 1)),
                    {"row": tf.TensorSpec((None,), tf.int32)},
                ),
            ),
            verbose=0,
        )
    images, labels = blobs()
    labels["col"][0] = 99
    before = weights_of(factorizer)
    with pytest.raises(ValueError, match=r"task 'col' in \[0, 4\)") as info:
        factorizer.fit(dataset(images, labels), verbose=0)
    assert "min/max: 0 99" in str(info.value)
    for old, new in zip(before, weights_of(factorizer)):
        np.testing.assert_array_equal(old, new)  # no update applied
    history = factorizer.fit(dataset(*blobs()), verbose=0)
    assert np.isfinite(history.history["loss"][0])


# === Factorizer.fit: images ===


@pytest.mark.parametrize(
    "shape, words",
    [
        ((16, 12, 16, 1), r"shaped \[batch, 16, 16, 1\].*resize"),
        ((16, 16, 16, 3), r"shaped \[batch, 16, 16, 1\].*1 channel"),
        ((16, 16, 16), r"one axis short.*dataset.batch"),
    ],
)
def test_fit_refuses_images_of_the_wrong_shape(factorizer, shape, words):
    labels = blobs()[1]
    with pytest.raises(ValueError, match=words):
        factorizer.fit(dataset(np.zeros(shape, "float32"), labels), verbose=0)


def test_fit_refuses_unbatched_datasets(factorizer):
    images, labels = blobs()
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    with pytest.raises(ValueError, match=r"one axis short.*dataset.batch"):
        factorizer.fit(data, verbose=0)


def test_fit_refuses_uint8_and_0_255_images(factorizer, eager):
    images, labels = blobs()
    pixels = (images.clip(0, 1) * 255).astype("uint8")
    with pytest.raises(ValueError, match="dtype uint8.*255.*pixel_scale"):
        factorizer.fit(dataset(pixels, labels), verbose=0)
    with pytest.raises(ValueError, match=r"value range \[0, 1\].*255"):
        factorizer.fit(dataset(pixels.astype("float32"), labels), verbose=0)


def test_fit_refuses_nan_images_before_any_update(factorizer, eager):
    images, labels = blobs()
    images[2, 0, 0, 0] = np.nan
    before = weights_of(factorizer)
    with pytest.raises(NonFiniteError, match="finite images.*repair"):
        factorizer.fit(dataset(images, labels), verbose=0)
    for old, new in zip(before, weights_of(factorizer)):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("empty", ["known", "unknown"])
def test_fit_refuses_an_empty_dataset(factorizer, eager, empty):
    data = dataset(*blobs())
    data = data.take(0) if empty == "known" else data.filter(lambda x, y: False)
    with pytest.raises(ValueError, match="at least one batch.*data source"):
        factorizer.fit(data, verbose=0)


def test_fit_that_asks_for_no_epoch_accepts_an_empty_dataset(factorizer):
    # initial_epoch == epochs trains nothing: no batch is expected. (The
    # filter hides the emptiness from the cardinality check before fit.)
    empty = dataset(*blobs()).filter(lambda x, y: False)
    history = factorizer.fit(empty, epochs=1, initial_epoch=1, verbose=0)
    assert history.history == {}


def test_fit_passes_positional_arguments_and_the_callers_callbacks(
    factorizer,
):
    # fit adds its batch counter to the caller's callbacks, by position too.
    epochs = []
    callback = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epochs.append(epoch)
    )
    data = dataset(*blobs())
    history = factorizer.fit(data, None, None, 2, 0, [callback])
    assert epochs == [0, 1] and len(history.history["loss"]) == 2
    callbacks = keras.callbacks.CallbackList([callback], model=factorizer)
    factorizer.fit(data, epochs=1, verbose=0, callbacks=callbacks)
    assert epochs == [0, 1, 0]


def test_fit_checks_array_inputs_too(factorizer):
    images, labels = blobs()
    labels["col"] = labels["col"].astype("float32")
    with pytest.raises(ValueError, match=r"labels\['col'\].*cast"):
        factorizer.fit(images, labels, verbose=0)
    with pytest.raises(ValueError, match="at least one image"):
        factorizer.fit(images[:0], blobs()[1], verbose=0)


# === Factorizer: non-finite loss ===


def nan_aux_factorizer(**kwargs):
    """A factorizer whose `row` auxiliary head has a NaN kernel."""
    factorizer = fixtures.tiny_factorizer(**kwargs)
    factorizer.compile()
    kernel = factorizer.task_factors["row"].aux_head.kernel
    kernel.assign(np.full(kernel.shape, np.nan, kernel.dtype))
    return factorizer


def test_a_nan_loss_stops_fit_and_names_the_term(eager):
    factorizer = nan_aux_factorizer()
    before = weights_of(factorizer.common)
    with pytest.raises(NonFiniteError, match="'aux_loss'.*learning rate"):
        factorizer.fit(dataset(*blobs()), epochs=3, verbose=0)
    for old, new in zip(before, weights_of(factorizer.common)):
        np.testing.assert_array_equal(old, new)


def test_stop_on_nonfinite_loss_false_trains_on(eager):
    factorizer = nan_aux_factorizer(stop_on_nonfinite_loss=False)
    history = factorizer.fit(dataset(*blobs()), epochs=2, verbose=0)
    assert len(history.epoch) == 2
    assert np.isnan(history.history["aux_loss"][-1])


def test_check_batches_false_skips_the_batch_checks(eager):
    factorizer = fixtures.tiny_factorizer(check_batches=False)
    factorizer.compile()
    images, labels = blobs()
    history = factorizer.fit(dataset(images * 3.0, labels), verbose=0)
    assert np.isfinite(history.history["loss"][0])


# === Factorizer: options ===


def test_objective_option_typo_names_the_nearest_option():
    with pytest.raises(TypeError, match="'betta'. Did you mean 'beta'"):
        fixtures.tiny_factorizer(betta=0.1)


def test_new_options_are_in_the_config():
    factorizer = fixtures.tiny_factorizer(
        value_range=(-1, 1), check_batches=False, stop_on_nonfinite_loss=False
    )
    config = factorizer.get_config()
    assert config["value_range"] == [-1.0, 1.0]
    assert config["check_batches"] is False
    assert config["stop_on_nonfinite_loss"] is False


# === kfactor.data.array_dataset ===


def test_array_dataset_refuses_fractional_float_labels():
    images = np.zeros((4, 2, 2, 1), "float32")
    with pytest.raises(ValueError, match=r"\[0.5, 1.7\].*not whole.*int"):
        array_dataset(images, {"t": np.array([0.0, 0.5, 1.7, 2.0])})
    ds = array_dataset(
        images, {"t": np.array([0.0, 1.0, 2.0, 1.0])}, shuffle=False
    )
    labels = np.concatenate([y["t"].numpy() for _, y in ds])
    assert labels.tolist() == [0, 1, 2, 1]


def test_array_dataset_refuses_labels_outside_num_classes():
    images = np.zeros((3, 2, 2, 1), "float32")
    with pytest.raises(ValueError, match=r"\[0, 3\).*max 3.*0\.\.2"):
        array_dataset(images, {"t": [0, 1, 3]}, num_classes={"t": 3})
    with pytest.raises(ValueError, match=">= 0.*min -1"):
        array_dataset(images, {"t": [0, 1, -1]})


def test_array_dataset_refuses_0_255_pixels_unless_rescaled():
    pixels = np.full((2, 2, 2, 1), 255, "uint8")
    pixels[0] = 0
    with pytest.raises(ValueError, match=r"\[0, 255\].*pixel_scale=1/255"):
        array_dataset(pixels, {"t": [0, 1]})
    ds = array_dataset(pixels, {"t": [0, 1]}, pixel_scale=1 / 255)
    assert float(next(iter(ds))[0].numpy().max()) == pytest.approx(1.0)


def test_array_dataset_refuses_nan_images():
    images = np.zeros((2, 2, 2, 1), "float32")
    images[0, 0, 0, 0] = np.inf
    with pytest.raises(NonFiniteError, match="finite images"):
        array_dataset(images, {"t": [0, 1]})


def test_docstring_examples_run():
    results = doctest.testmod(validation, optionflags=doctest.ELLIPSIS)
    assert results.attempted >= 1 and results.failed == 0
