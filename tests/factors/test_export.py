"""TF Serving export: signatures, exactness, TensorFlow-only reload, CLI."""

import os
import subprocess
import sys
import textwrap

import kfactor
from kfactor.factors import export

import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The assembled model of the saved factors and its export."""
    model = kfactor.assemble(kfactor.load_factors(fixtures.saved_factors()))
    directory = str(tmp_path_factory.mktemp("serving") / "1")
    summary = kfactor.export_for_serving(model, directory)
    return model, directory, summary


def test_signatures_inputs_and_outputs_are_named(exported):
    _, directory, summary = exported
    assert summary["tasks"] == ["col", "row"]
    assert summary["signatures"] == {
        "serving_default": [
            "col_logits",
            "col_probabilities",
            "row_logits",
            "row_probabilities",
        ],
        "col": ["logits", "probabilities"],
        "row": ["logits", "probabilities"],
        "serving_uint8": [
            "col_logits",
            "col_probabilities",
            "row_logits",
            "row_probabilities",
        ],
    }
    assert summary["input"] == {"images": [None, 16, 16, 1]}
    signature = tf.saved_model.load(directory).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["images"]
    assert summary["size_bytes"] > 0


def test_reloaded_export_equals_the_in_memory_model(exported):
    model, directory, _ = exported
    assert export.check_export(directory, model) <= 1e-5
    images = fixtures.probe()
    served = tf.saved_model.load(directory).signatures["serving_default"](
        images=tf.constant(images)
    )
    probabilities = np.asarray(served["row_probabilities"])
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)


def test_only_inference_weights_are_exported(exported, tmp_path):
    model, _, summary = exported
    assert summary["num_parameters"] == model.count_params()
    factorizer = fixtures.factorizer()
    from_factorizer = kfactor.export_for_serving(
        factorizer, str(tmp_path / "f"), tasks=["row"]
    )
    row = factorizer.task_factors["row"]
    inference = factorizer.common.count_params() + row.count_params()
    assert from_factorizer["tasks"] == ["row"]
    assert from_factorizer["num_parameters"] == (
        inference - row.aux_head.count_params()
    )


def test_export_loads_and_runs_with_tensorflow_alone(exported, tmp_path):
    model, directory, _ = exported
    images = fixtures.probe()
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "row.npy", model(images)["row"])
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load(sys.argv[1])
        images = tf.constant(np.load(sys.argv[2]))
        both = loaded.signatures["serving_default"](images=images)
        row = loaded.signatures["row"](images=images)
        want = np.load(sys.argv[3])
        assert "kfactor" not in sys.modules and "tests" not in sys.modules
        print(max(float(np.max(np.abs(np.asarray(got) - want)))
                  for got in (both["row_logits"], row["logits"])))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, directory]
        + [str(tmp_path / "images.npy"), str(tmp_path / "row.npy")],
        cwd=tmp_path,
        env=fixtures.subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.split()[-1]) <= 1e-5


def test_saved_model_cli_shows_and_runs_the_export(exported, tmp_path):
    _, directory, _ = exported
    cli = fixtures.console_tool("saved_model_cli")
    run = dict(capture_output=True, text=True, env=fixtures.subprocess_env())
    shown = subprocess.run([cli, "show", "--dir", directory, "--all"], **run)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for text in ("signature_def['serving_default']", "signature_def['row']"):
        assert text in shown.stdout
    assert "outputs['row_probabilities']" in shown.stdout
    assert "inputs['images']" in shown.stdout
    np.save(tmp_path / "images.npy", fixtures.probe(2))
    ran = subprocess.run(
        [cli, "run", "--dir", directory, "--tag_set", "serve"]
        + ["--signature_def", "row", "--inputs"]
        + [f"images={tmp_path / 'images.npy'}"],
        **run,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Result for output key probabilities" in ran.stdout


def test_bad_targets_and_models_are_refused(exported, tmp_path):
    model, directory, _ = exported
    with pytest.raises(FileExistsError, match="overwrite=True"):
        kfactor.export_for_serving(model, directory)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        kfactor.export_for_serving(model, str(a_file))
    encoder = fixtures.tiny_encoder()
    with pytest.raises(ValueError, match=r"images -> \{task: logits\}"):
        kfactor.export_for_serving(encoder, str(tmp_path / "t"))
    with pytest.raises(ValueError, match="assemble"):
        kfactor.export_for_serving(model, str(tmp_path / "t"), tasks=["row"])
    summary = kfactor.export_for_serving(model, directory, overwrite=True)
    assert sorted(os.listdir(directory)) == sorted(
        os.listdir(summary["directory"])
    )


def test_publish_saves_reloads_assembles_exports_and_measures(tmp_path):
    report = kfactor.publish_factors(fixtures.factorizer(), str(tmp_path))
    assert report["factors_dir"] == str(tmp_path / "factors")
    assert report["export_dir"] == str(tmp_path / "serving" / "1")
    assert sorted(os.listdir(report["factors_dir"])) == ["col", "common", "row"]
    assert tf.saved_model.contains_saved_model(report["export_dir"])
    assert report["assembled_max_abs_diff"] <= 1e-5
    assert report["export_max_abs_diff"] <= 1e-5
    assert set(report["assembled_max_abs_diff_per_task"]) == {"row", "col"}
    assert report["export_num_parameters"] > 0
    assert report["factors_size_bytes"] > 0 and report["export_size_bytes"] > 0
