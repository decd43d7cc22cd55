"""FactorizationHyperModel: keras-tuner search over the IMB objective."""

import doctest

import kfactor
from kfactor.lab import tuning
from kfactor.zoo.simple_conv import NARROW_WIDTHS

import keras
import keras_tuner
import numpy as np
import pytest

from tests import fixtures


@pytest.fixture(scope="module")
def teacher():
    keras.utils.set_random_seed(1)
    return fixtures.train_teacher(
        fixtures.tiny_teacher(), fixtures.blob_dataset(256), epochs=3
    )


def hypermodel(teacher, **kwargs):
    return tuning.FactorizationHyperModel(
        teacher,
        common=lambda: fixtures.tiny_encoder(name="common_encoder"),
        tasks={
            task: (lambda task=task: fixtures.tiny_encoder(None, f"{task}_enc"))
            for task in fixtures.TINY_TASKS
        },
        learning_rate=3e-3,
        **kwargs,
    )


def loss_configs(factorizer):
    return {loss.name: loss.get_config() for loss in factorizer.factor_losses}


def test_random_search_runs_two_trials_and_returns_the_best(
    teacher, tmp_path, eager
):
    model = hypermodel(teacher)
    tuner = keras_tuner.RandomSearch(
        model,
        objective=model.objective,
        max_trials=2,
        seed=0,
        directory=tmp_path,
        project_name="search",
        overwrite=True,
    )
    validation = fixtures.blob_dataset(32, seed=1)
    tuner.search(
        fixtures.blob_dataset(64), validation_data=validation, epochs=1
    )

    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    assert all(trial.status == "COMPLETED" for trial in trials)
    scores = [trial.score for trial in trials]
    assert all(0.0 <= s <= 1.0 for s in scores)
    best_hp = tuner.get_best_hyperparameters(1)[0]
    assert tuner.oracle.get_best_trials(1)[0].score == max(scores)
    for name in ("beta", "infomax_weight", "infomax_estimator", "kd"):
        assert name in best_hp.values
    assert 1e-5 <= best_hp["beta"] <= 1e-1
    assert best_hp["infomax_estimator"] in kfactor.objective.mi.ESTIMATORS
    # The best trial's checkpoint reloads into a Factorizer with that score.
    best = tuner.get_best_models(1)[0]
    assert isinstance(best, kfactor.Factorizer)
    logs = best.evaluate(validation, verbose=0, return_dict=True)
    accuracy = np.mean([logs[f"{t}_accuracy"] for t in fixtures.TINY_TASKS])
    assert accuracy == pytest.approx(max(scores), abs=1e-6)


def test_default_hyperparameters_are_the_factorizer_defaults(teacher):
    hp = keras_tuner.HyperParameters()
    factorizer = hypermodel(teacher).build(hp)
    configs = loss_configs(factorizer)
    assert configs["infomin"]["weight"] == pytest.approx(1e-3)
    assert configs["infomax"]["weight"] == 1.0
    assert configs["infomax"]["estimator"] == "infonce"
    kinds = {t.name: type(t).__name__ for t in factorizer.factor_losses}
    assert kinds["kd"] == "LogitsKD"
    # kfactor's measured defaults beyond the reference (docs/RESULTS.md).
    assert configs["hint"]["weight"] == pytest.approx(10.0)
    assert configs["adversary"]["weight"] == pytest.approx(3.0)
    assert configs["kd"]["weight"] == pytest.approx(0.1)
    # kd_temperature only exists for soft-target KD.
    assert "kd_temperature" not in hp.values
    assert factorizer.optimizer is not None


def test_fixed_options_leave_the_search(teacher):
    model = hypermodel(
        teacher, kd="soft_target", beta=1e-2, label_smoothing=0.0
    )
    hp = keras_tuner.HyperParameters()
    factorizer = model.build(hp)
    space = {p.name: type(p).__name__ for p in hp.space}
    assert space["beta"] == "Fixed" and space["kd"] == "Fixed"
    assert space["kd_temperature"] == "Float"
    configs = loss_configs(factorizer)
    assert configs["infomin"]["weight"] == pytest.approx(1e-2)
    assert configs["kd"]["temperature"] == pytest.approx(4.0)
    assert configs["cls"]["label_smoothing"] == 0.0


def test_build_restores_the_dtype_policy_cleared_by_the_tuner(teacher):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = hypermodel(teacher)
        keras.backend.clear_session()  # what the tuner does before a trial
        factorizer = model.build(keras_tuner.HyperParameters())
        assert factorizer.common.compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_scores_callback_logs_mean_accuracy_and_mig(teacher):
    factorizer = hypermodel(teacher).build(keras_tuner.HyperParameters())
    scores = tuning.FactorizationScores(
        mig_data=fixtures.blob_dataset(64, seed=2), mig_examples=48
    )
    scores.set_model(factorizer)
    logs = {
        "row_accuracy": 0.5,
        "col_accuracy": 1.0,
        "val_row_accuracy": 0.25,
        "val_col_accuracy": 0.75,
    }
    scores.on_epoch_end(0, logs)
    assert logs["mean_factor_accuracy"] == pytest.approx(0.75)
    assert logs["val_mean_factor_accuracy"] == pytest.approx(0.5)
    assert 0.0 <= logs["val_task_code_mig"] <= 1.0
    assert logs["val_accuracy_mig_mean"] == pytest.approx(
        0.5 * (0.5 + logs["val_task_code_mig"])
    )


def test_input_errors(teacher):
    with pytest.raises(TypeError, match="builder"):
        tuning.FactorizationHyperModel(
            teacher, common=fixtures.tiny_encoder(), tasks={"row": lambda: 0}
        )
    with pytest.raises(ValueError, match="objective"):
        hypermodel(teacher, objective="val_loss")
    model = hypermodel(teacher)
    factorizer = model.build(keras_tuner.HyperParameters())
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(None, factorizer, fixtures.blob_dataset(8), epochs=1)


def test_docstring_example_runs():
    globs = {
        "FactorizationHyperModel": tuning.FactorizationHyperModel,
        "keras_tuner": keras_tuner,
        "multitask_teacher": kfactor.zoo.multitask_teacher,
        "simple_conv64": kfactor.zoo.simple_conv64,
        "NARROW_WIDTHS": NARROW_WIDTHS,
    }
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(
        tuning.FactorizationHyperModel, "FactorizationHyperModel", globs=globs
    ):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted > 0 and results.failed == 0
