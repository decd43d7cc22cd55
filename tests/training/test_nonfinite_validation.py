"""A NaN or Inf loss stops training; in validation it skips the batch, counts
it (`val_nonfinite_batches`) and warns."""

import kfactor
from kfactor import validation
from kfactor.training import checks

import keras
import numpy as np
import pytest

from tests import fixtures


class PoisonProjections(keras.callbacks.Callback):
    """Makes the InfoMax projections NaN after the last training batch: the
    validation loss is NaN, the factor networks (and the data) are fine."""

    def __init__(self, last_batch):
        super().__init__()
        self.last_batch = last_batch

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.last_batch:
            poison(self.model)


def poison(factorizer):
    for weight in factorizer.projections[0].weights:
        weight.assign(np.full(weight.shape, np.nan, weight.dtype))


@pytest.fixture
def factorizer():
    factorizer = fixtures.tiny_factorizer(fixtures.factorizer().teacher)
    factorizer.compile()
    return factorizer


def test_a_nan_validation_loss_skips_the_batches_and_warns(factorizer):
    with pytest.warns(checks.NonFiniteValidationWarning, match="Skipped 2"):
        history = factorizer.fit(
            fixtures.blob_dataset(64),
            validation_data=fixtures.blob_dataset(64),
            epochs=1,
            verbose=0,
            callbacks=[PoisonProjections(last_batch=1)],
            shuffle=False,
        )
    logs = history.history
    assert logs["val_nonfinite_batches"] == [2.0]
    assert "nonfinite_batches" not in logs  # training logs: it stops instead
    assert np.isfinite(logs["loss"][0])
    assert np.isfinite(logs["val_loss"][0])


def test_evaluate_skips_and_counts_nan_batches(factorizer):
    poison(factorizer)
    with pytest.warns(checks.NonFiniteValidationWarning, match="evaluate"):
        results = factorizer.evaluate(
            fixtures.blob_dataset(64), verbose=0, return_dict=True
        )
    assert results["nonfinite_batches"] == 2.0


def test_a_finite_evaluate_counts_nothing(factorizer):
    results = factorizer.evaluate(
        fixtures.blob_dataset(32), verbose=0, return_dict=True
    )
    assert results["nonfinite_batches"] == 0.0


def test_a_nan_training_loss_still_stops_fit(factorizer):
    poison(factorizer)
    with pytest.raises(validation.NonFiniteError, match="finite loss term"):
        factorizer.fit(fixtures.blob_dataset(32), epochs=1, verbose=0)


def test_nan_validation_images_still_raise(factorizer):
    images, labels = fixtures.blob_images(32)
    images[3, 0, 0, 0] = np.nan
    with pytest.raises(validation.NonFiniteError):
        factorizer.fit(
            fixtures.blob_dataset(32),
            validation_data=(images, labels),
            epochs=1,
            verbose=0,
        )


def test_the_warning_class_is_public():
    assert issubclass(checks.NonFiniteValidationWarning, UserWarning)
    assert kfactor.training.checks is checks
