"""Saving factors: layout, manifest contents, fingerprints, atomicity."""

import datetime
import doctest
import json
import os

from kfactor.factors import checks
from kfactor.factors import manifest as manifest_lib
from kfactor.factors import saving as artifacts
from kfactor.factors.saved_factor import restored_variables

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures


def read(directory, name):
    with open(os.path.join(directory, name, manifest_lib.MANIFEST_FILE)) as f:
        return json.load(f)


def tree(directory):
    """Relative path -> bytes of every file under `directory`."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


def test_one_saved_model_and_manifest_per_factor():
    directory = fixtures.saved_factors()
    assert sorted(os.listdir(directory)) == ["col", "common", "row"]
    for name in ("common", "row", "col"):
        assert sorted(os.listdir(os.path.join(directory, name))) == [
            manifest_lib.MANIFEST_FILE,
            manifest_lib.SAVED_MODEL_DIR,
        ]
        saved_model = os.path.join(directory, name, "saved_model")
        assert tf.saved_model.contains_saved_model(saved_model)


def test_manifest_records_what_the_contract_lists():
    factorizer, directory = fixtures.factorizer(), fixtures.saved_factors()
    common, row = read(directory, "common"), read(directory, "row")
    probe = {"probe_images", "probe_logits"}
    assert set(row) == set(manifest_lib.MANIFEST_KEYS) | probe
    assert set(common) == set(manifest_lib.MANIFEST_KEYS)
    assert row["format_version"] == manifest_lib.FORMAT_VERSION
    assert (common["role"], common["task"]) == ("common", None)
    assert (row["role"], row["task"], row["num_classes"]) == ("task", "row", 4)
    assert row["input_spec"] == {
        "shape": [16, 16, 1],
        "dtype": "float32",
        "value_range": [0.0, 1.0],
        "preprocessing": manifest_lib.DEFAULT_PREPROCESSING,
    }
    fingerprint = manifest_lib.weights_fingerprint(factorizer.common.weights)
    assert common["weights_fingerprint"] == fingerprint
    assert row["common_fingerprint"] == fingerprint
    assert read(directory, "col")["common_fingerprint"] == fingerprint
    assert row["teacher"] == {
        "name": "teacher",
        "weights_fingerprint": manifest_lib.weights_fingerprint(
            factorizer.teacher.weights
        ),
    }
    losses = [
        keras.saving.deserialize_keras_object(c) for c in row["objective"]
    ]
    assert [type(x) for x in losses] == [
        type(x) for x in factorizer.factor_losses
    ]
    assert row["test_accuracy"] == 0.5
    assert read(directory, "col")["test_accuracy"] is None
    assert set(row["versions"]) == {"kfactor", "tensorflow", "keras"}
    created = datetime.datetime.fromisoformat(row["created"])
    assert created.tzinfo is not None


def test_task_artefact_holds_no_training_only_weights():
    factorizer, directory = fixtures.factorizer(), fixtures.saved_factors()
    factor = factorizer.task_factors["row"]
    restored = tf.saved_model.load(os.path.join(directory, "row/saved_model"))
    digests = {
        manifest_lib.variable_digest(v)
        for v in restored_variables(restored, ["serve", "encode"])
    }
    expected = factor.encoder.weights + factor.code_layer.weights
    expected += factor.head.weights
    assert digests == {manifest_lib.variable_digest(v) for v in expected}
    for variable in factor.aux_head.weights + factorizer.teacher.weights:
        if not np.any(variable):
            continue  # zero biases look alike; kernels are random
        assert manifest_lib.variable_digest(variable) not in digests


def test_fingerprint_ignores_order_and_sees_every_byte():
    a, b = np.arange(3, dtype="float32"), np.ones((2, 2), "float32")
    fingerprint = manifest_lib.weights_fingerprint
    assert fingerprint([a, b]) == fingerprint([b, a])
    assert fingerprint([a, b]) != fingerprint([a, b + 1e-7])
    assert fingerprint([a]) != fingerprint([a.astype("float64")])
    assert fingerprint([b]) != fingerprint([b.reshape(4)])


def test_existing_target_is_kept_unless_overwrite(tmp_path):
    target = fixtures.copy_factors(tmp_path / "f")
    before = tree(target)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fixtures.factorizer().save_factors(target)
    assert tree(target) == before
    fixtures.factorizer().save_factors(target, overwrite=True)
    assert sorted(os.listdir(target)) == ["col", "common", "row"]
    assert sorted(os.listdir(tmp_path)) == [".f.lock", ".f.swap", "f"]


def test_a_crash_mid_save_leaves_the_earlier_artefact_intact(
    tmp_path, monkeypatch
):
    target = fixtures.copy_factors(tmp_path / "f")
    before = tree(target)
    calls = []
    real = artifacts.export_factor

    def crash_on_second_factor(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(artifacts, "export_factor", crash_on_second_factor)
    with pytest.raises(KeyboardInterrupt):
        fixtures.factorizer().save_factors(target, overwrite=True)
    assert len(calls) == 2
    assert tree(target) == before
    # The temporary sibling is removed; the lock files stay.
    assert sorted(os.listdir(tmp_path)) == [".f.lock", ".f.swap", "f"]


def test_a_file_or_an_unwritable_target_is_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        fixtures.factorizer().save_factors(str(a_file))
    with pytest.raises(PermissionError, match="writable"):
        fixtures.factorizer().save_factors(str(a_file / "below"))
    if os.getuid() == 0:
        unwritable = "/sys/kfactor_test_factors"  # root may write elsewhere
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        unwritable = str(locked / "f")
    with pytest.raises(PermissionError, match="writable"):
        fixtures.factorizer().save_factors(unwritable)
    assert a_file.read_text() == "x"


def test_test_accuracy_for_an_unknown_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"tasks \['nope'\]"):
        fixtures.factorizer().save_factors(
            str(tmp_path / "f"), test_accuracy={"nope": 1.0}
        )
    assert not os.path.exists(tmp_path / "f")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("teacher"), r"missing \['teacher'\]"),
        (lambda m: m.update(colour="red"), r"unknown keys \['colour'\]"),
        (lambda m: m.update(format_version=99), "newer kfactor"),
        (lambda m: m.update(format_version=0), "format_version >= 1"),
        (lambda m: m.update(role="student"), "role in"),
        (lambda m: m.update(num_classes="4"), "num_classes of type"),
        (lambda m: m.update(task=None), "exactly for role 'task'"),
        (lambda m: m["input_spec"].pop("dtype"), r"missing \['dtype'\]"),
        (lambda m: m["teacher"].update(id=1), r"unknown keys \['id'\]"),
        (lambda m: m.pop("probe_images"), "together, on a task factor"),
        (lambda m: m["probe_images"].update(num=0), "num >= 1"),
        (lambda m: m["probe_images"].pop("seed"), r"missing \['seed'\]"),
        (lambda m: m["probe_logits"].pop(), "8 lists of 4 finite"),
        (lambda m: m["probe_logits"][2].append(0.0), "8 lists of 4 finite"),
        (lambda m: m["probe_logits"][0].__setitem__(1, "x"), "4 finite"),
        (
            lambda m: m["probe_logits"][0].__setitem__(1, float("inf")),
            "4 finite",
        ),
        (lambda m: m.update(probe_logits={}), "probe_logits of type"),
    ],
)
def test_invalid_manifests_name_the_problem(edit, message):
    manifest = read(fixtures.saved_factors(), "row")
    manifest_lib.validate_manifest(json.loads(json.dumps(manifest)))
    edit(manifest)
    with pytest.raises(manifest_lib.FactorFormatError, match=message):
        manifest_lib.validate_manifest(manifest, "row/kfactor.json")


def test_probe_logits_are_for_task_factors_only():
    common = read(fixtures.saved_factors(), "common")
    row = read(fixtures.saved_factors(), "row")
    common.update(
        probe_images=row["probe_images"], probe_logits=row["probe_logits"]
    )
    with pytest.raises(manifest_lib.FactorFormatError, match="role 'common'"):
        manifest_lib.validate_manifest(common)


def test_extra_metadata_is_allowed_under_extra():
    manifest = read(fixtures.saved_factors(), "row")
    manifest["extra"] = {"dataset": "blobs", "anything": [1, 2]}
    assert manifest_lib.validate_manifest(manifest) is manifest


def test_task_names_must_be_identifiers():
    for bad in ("pos x", "common", "1st", ""):
        with pytest.raises(ValueError, match="identifier"):
            manifest_lib.check_name(bad)


def test_module_doctests_run():
    for module in (checks, manifest_lib):
        result = doctest.testmod(module, extraglobs={"np": np})
        assert result.attempted > 0 and result.failed == 0, module.__name__
