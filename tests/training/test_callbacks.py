"""The collapse monitor: warns (and stops) when the common code collapses."""

import doctest
import warnings

from kfactor.training import callbacks

import keras
import pytest

from tests import fixtures


def blob_fit(estimator, epochs, monitor):
    keras.utils.set_random_seed(0)
    teacher = fixtures.train_teacher(
        fixtures.tiny_teacher(), fixtures.blob_dataset(512), epochs=4
    )
    factorizer = fixtures.tiny_factorizer(
        teacher,
        infomax_estimator=estimator,
        infomax_temperature=0.1 if estimator == "infonce" else 1.0,
        # Only InfoMax shapes the common code: no task term (and no hint,
        # kfactor's default beyond the reference) reaches it.
        factor_head_weight=0.0,
        kd_weight=0.0,
        hint_weight=0.0,
        adversary_weight=0.0,
    )
    factorizer.compile(optimizer=keras.optimizers.Adam(1e-2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", callbacks.CommonFactorCollapseWarning)
        history = factorizer.fit(
            fixtures.blob_dataset(512),
            epochs=epochs,
            callbacks=[monitor],
            verbose=0,
        )
    collapse_warnings = [
        w
        for w in caught
        if issubclass(w.category, callbacks.CommonFactorCollapseWarning)
    ]
    return history.history, collapse_warnings


def test_infonce_fit_keeps_the_common_code_alive_and_does_not_warn():
    monitor = callbacks.CommonCollapseMonitor()
    logs, caught = blob_fit("infonce", epochs=4, monitor=monitor)
    assert logs["common_cosine"][-1] < 0.5
    assert logs["common_participation_ratio"][-1] > 2.0
    assert monitor.collapsed_at is None and not caught


def test_reference_dv_fit_collapses_and_the_monitor_warns_and_stops():
    monitor = callbacks.CommonCollapseMonitor(
        every_n_batches=4, stop_training=True
    )
    logs, caught = blob_fit("dv", epochs=8, monitor=monitor)
    assert monitor.collapsed_at is not None, logs["common_cosine"]
    assert caught and "collapsed" in str(caught[0].message)
    assert len(logs["loss"]) < 8  # stopped early


def test_monitor_rejects_bad_arguments_and_foreign_logs():
    with pytest.raises(ValueError, match="max_cosine"):
        callbacks.CommonCollapseMonitor(max_cosine=2.0)
    with pytest.raises(ValueError, match="every_n_batches"):
        callbacks.CommonCollapseMonitor(every_n_batches=0)
    monitor = callbacks.CommonCollapseMonitor()
    monitor.on_train_batch_end(0, {})
    with pytest.raises(ValueError, match="only kfactor.Factorizer"):
        monitor.on_epoch_end(0, {"loss": 1.0})


def test_docstring_examples_run():
    results = doctest.testmod(callbacks)
    assert results.attempted >= 2 and results.failed == 0
