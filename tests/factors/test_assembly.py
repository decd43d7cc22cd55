"""Assembly: exactness, one common pass, refusals, adding a factor later."""

import json
import os

import kfactor
from kfactor.factors import assembly
from kfactor.factors import manifest as manifest_lib
from kfactor.factors import saving as artifacts
from kfactor.factors.networks import FactorNetworks

import keras
import numpy as np
import pytest

from tests import fixtures


@pytest.fixture(scope="module")
def factors():
    return kfactor.load_factors(fixtures.saved_factors())


def test_assembled_outputs_equal_the_standalone_factor_networks(factors):
    factorizer, images = fixtures.factorizer(), fixtures.probe()
    model = kfactor.assemble(factors)
    assert sorted(model.output) == ["col", "row"]
    logits = model(images)
    for task in ("row", "col"):
        standalone = factorizer.factor_network(task)(images)
        assert np.max(np.abs(logits[task] - standalone)) <= 1e-5
    differences = assembly.check_assembly(model, factors, images)
    assert set(differences) == {"row", "col"}
    assert max(differences.values()) <= assembly.TOLERANCE


def test_any_subset_assembles(factors):
    images = fixtures.probe()
    both = kfactor.assemble(factors)(images)
    row_only = kfactor.assemble(factors, tasks="row")
    assert list(row_only.output) == ["row"]
    np.testing.assert_array_equal(row_only(images)["row"], both["row"])


def test_common_factor_is_held_once_and_run_once_per_call(factors):
    model = kfactor.assemble(factors, verify=False)
    common = factors["common"]
    ids = [id(w.value) for w in model.weights]
    assert len(ids) == len(set(ids))
    expected = sum(f.count_params() for f in factors.values())
    assert model.count_params() == expected
    calls = []
    original = common.call

    def counting_call(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    common.call = counting_call
    try:
        model(fixtures.probe())
    finally:
        del common.call
    assert len(calls) == 1


def test_a_factorizer_assembles_without_its_training_only_parts():
    factorizer, images = fixtures.factorizer(), fixtures.probe()
    model = kfactor.assemble(factorizer)
    paths = " ".join(w.path for w in model.weights)
    assert "aux_head" not in paths and "teacher" not in paths
    expected = factorizer.predict(images, verbose=0)
    for task, logits in model(images).items():
        assert np.max(np.abs(logits - expected[task])) <= 1e-5


def test_unknown_tasks_and_empty_factors_are_refused(factors):
    with pytest.raises(ValueError, match=r"unknown: \['nope'\]"):
        kfactor.assemble(factors, tasks=["row", "nope"])
    with pytest.raises(TypeError, match="non-empty"):
        kfactor.assemble({})
    with pytest.raises(TypeError, match="SavedFactor"):
        kfactor.assemble({"row": "saved_factors/row"})
    no_common = {k: v for k, v in factors.items() if k != "common"}
    with pytest.raises(ValueError, match="exactly one common factor"):
        kfactor.assemble(no_common)


def test_factors_of_another_common_factor_are_refused(factors):
    other = kfactor.load_factors(fixtures.other_saved_factors())
    mixed = [factors["common"], factors["row"], other["col"]]
    with pytest.raises(ValueError, match="common_fingerprint.*Fix: load"):
        kfactor.assemble(mixed)
    with pytest.raises(ValueError, match="exactly one common factor"):
        kfactor.assemble([factors["common"], other["common"], other["col"]])


def test_another_input_spec_or_format_version_is_refused(
    factors, tmp_path, monkeypatch
):
    directory = str(tmp_path / "f")
    artifacts.save_factors(
        fixtures.factorizer(), directory, value_range=(-1.0, 1.0)
    )
    shifted = kfactor.load_factors(directory)
    with pytest.raises(ValueError, match="input_spec.*same images"):
        kfactor.assemble([factors["common"], shifted["row"]])

    monkeypatch.setattr(manifest_lib, "FORMAT_VERSION", 2)
    path = os.path.join(directory, "col", manifest_lib.MANIFEST_FILE)
    with open(path) as f:
        manifest = json.load(f)
    manifest["format_version"] = 2
    with open(path, "w") as f:
        json.dump(manifest, f)
    newer = kfactor.SavedFactor(os.path.join(directory, "col"))
    with pytest.raises(ValueError, match="format_version"):
        kfactor.assemble([factors["common"], newer])


def test_a_factor_added_later_leaves_the_old_tasks_bit_for_bit(tmp_path):
    """Train `col` against the saved, frozen common factor; add it to `row`."""
    old_dir = fixtures.saved_factors()
    old_sources = [
        os.path.join(old_dir, "common"),
        os.path.join(old_dir, "row"),
    ]
    old = kfactor.load_factors(*old_sources)
    images = fixtures.probe()
    before = np.asarray(kfactor.assemble(old)(images)["row"])
    common_before = [np.array(w) for w in old["common"].weights]

    teacher = fixtures.factorizer().teacher
    new = kfactor.Factorizer(
        teacher,
        common=old["common"],
        tasks={"col": fixtures.tiny_encoder(None, name="col_encoder_v2")},
    )
    new.compile(optimizer=keras.optimizers.Adam(3e-3))
    new.fit(fixtures.blob_dataset(64), epochs=1, verbose=0)
    for saved, now in zip(common_before, old["common"].weights):
        np.testing.assert_array_equal(saved, now)
    new_dir = str(tmp_path / "col_factor")
    new.save_factors(new_dir)
    with open(os.path.join(new_dir, "col", manifest_lib.MANIFEST_FILE)) as f:
        manifest = json.load(f)
    assert manifest["common_fingerprint"] == old["common"].weights_fingerprint
    assert manifest["teacher"] == old["row"].manifest["teacher"]

    # The re-saved common factor (a SavedFactor, with its input checks)
    # passes the graph check and computes what the old one does.
    resaved = kfactor.load_factors(os.path.join(new_dir, "common"))
    np.testing.assert_array_equal(
        resaved["common"](images), old["common"](images)
    )
    combined = kfactor.load_factors(*old_sources, new_dir)
    assert sorted(combined) == ["col", "common", "row"]
    logits = kfactor.assemble(combined)(images)
    np.testing.assert_array_equal(logits["row"], before)
    np.testing.assert_array_equal(logits["col"], new(images)["col"])


def test_deterministic_task_codes_save_and_assemble_exactly(tmp_path):
    factorizer = kfactor.Factorizer(
        fixtures.factorizer().teacher,
        common=fixtures.tiny_encoder(name="common_encoder"),
        tasks={
            "row": kfactor.TaskFactor(
                fixtures.tiny_encoder(None, name="row_encoder"),
                variational=False,
            )
        },
    )
    directory = str(tmp_path / "f")
    factorizer.save_factors(directory)
    factors = kfactor.load_factors(directory)
    images = fixtures.probe()
    logits = kfactor.assemble(factors)(images)["row"]
    expected = factorizer.factor_network("row")(images)
    assert np.max(np.abs(logits - expected)) <= 1e-5
    code = factorizer.task_factors["row"].encode(images).mean
    np.testing.assert_array_equal(factors["row"].encode(images), code)


class BareNetworks(FactorNetworks):
    """A `FactorNetworks` that is no `Factorizer`: the attributes only."""

    def __init__(self, factorizer):
        for name in (
            "common",
            "task_factors",
            "task_names",
            "num_classes",
            "code_dim",
            "image_shape",
            "teacher",
            "factor_losses",
        ):
            setattr(self, name, getattr(factorizer, name))


def test_factor_networks_need_no_factorizer(tmp_path):
    factorizer, images = fixtures.factorizer(), fixtures.probe()
    bare = BareNetworks(factorizer)
    assert not isinstance(bare, kfactor.Factorizer)
    np.testing.assert_array_equal(
        kfactor.assemble(bare)(images)["row"],
        kfactor.assemble(factorizer)(images)["row"],
    )
    bare.save_factors(str(tmp_path / "f"))
    saved = kfactor.load_factors(str(tmp_path / "f"))
    assert saved["row"].weights_fingerprint == (
        kfactor.load_factors(fixtures.saved_factors())[
            "row"
        ].weights_fingerprint
    )


def test_the_factorizer_is_factor_networks_and_keras_tracks_it():
    factorizer = fixtures.factorizer()
    assert isinstance(factorizer, FactorNetworks)
    # The Keras model tracks the factors set on it (its weights include
    # every factor network's) and serializes under its registered name.
    tracked = {id(w) for w in factorizer.weights}
    for task in factorizer.task_names:
        network = factorizer.factor_network(task)
        assert {id(w) for w in network.weights} <= tracked
    config = keras.saving.serialize_keras_object(factorizer)
    assert config["registered_name"] == "kfactor>Factorizer"
    assert json.loads(json.dumps(config))["config"]["weight_decay"] == 1e-4
    assert sorted(config["config"]["tasks"]) == ["col", "row"]


def test_publish_wants_factor_networks(tmp_path):
    factors = kfactor.load_factors(fixtures.saved_factors())
    with pytest.raises(TypeError, match="FactorNetworks.*export_for_serving"):
        kfactor.publish_factors(factors, str(tmp_path))
    assert not os.listdir(tmp_path)


# === verify: the logits recorded at save time ===


def test_task_manifests_record_the_factor_networks_probe_logits():
    factorizer = fixtures.factorizer()
    row = kfactor.load_factors(fixtures.saved_factors())["row"]
    probe = row.manifest["probe_images"]
    assert probe == {"num": 8, "seed": 0}
    images = manifest_lib.probe_images(row.image_spec, **probe)
    np.testing.assert_array_equal(
        np.asarray(row.manifest["probe_logits"], "float32"),
        factorizer.factor_network("row")(images),
    )
    common = kfactor.load_factors(fixtures.saved_factors())["common"]
    assert "probe_logits" not in common.manifest


def test_verify_catches_factors_that_load_into_other_weights():
    """A loading bug: the layers compute something else than was saved."""
    factors = kfactor.load_factors(fixtures.saved_factors())
    kernel = next(w for w in factors["row"].weights if len(w.shape) > 1)
    kernel.assign(kernel * 1.5)
    with pytest.raises(ValueError, match=r"recorded.*\['row'\].*Fix: the"):
        kfactor.assemble(factors)
    # Comparing with networks built from the same loaded layers misses it.
    model = kfactor.assemble(factors, verify=False)
    differences = assembly.check_assembly(model, factors)
    assert max(differences.values()) <= assembly.TOLERANCE
    # The untouched task still assembles and verifies.
    assert list(kfactor.assemble(factors, tasks="col").output) == ["col"]


def test_verify_catches_edited_probe_logits(tmp_path):
    directory = fixtures.copy_factors(tmp_path / "f")

    def shift(manifest):
        manifest["probe_logits"][3][1] += 0.5

    fixtures.edit_manifest(os.path.join(directory, "col"), shift)
    factors = kfactor.load_factors(directory)  # fingerprints still match
    with pytest.raises(ValueError, match=r"\{'col': 0\.5"):
        kfactor.assemble(factors)


def test_old_manifests_assemble_with_the_weaker_check(tmp_path, caplog):
    directory = fixtures.copy_factors(tmp_path / "f")

    def drop_probe(manifest):
        del manifest["probe_images"], manifest["probe_logits"]

    fixtures.edit_manifest(os.path.join(directory, "row"), drop_probe)
    factors = kfactor.load_factors(directory)
    with caplog.at_level("WARNING", logger=assembly.__name__):
        model = kfactor.assemble(factors)
    assert sorted(model.output) == ["col", "row"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "['row']" in warnings[0]
    assert "weaker check" in warnings[0]
    differences = assembly.verify_assembly(model, factors)
    assert set(differences) == {"row", "col"}


def test_recorded_tolerance_scales_with_the_logits(factors):
    model = kfactor.assemble(factors, verify=False)
    task_layers = {t: factors[t] for t in ("row", "col")}
    differences, tolerances = assembly.recorded_differences(model, task_layers)
    assert max(differences.values()) <= 1e-5
    for task, tolerance in tolerances.items():
        scale = np.max(np.abs(factors[task].manifest["probe_logits"]))
        expected = assembly.RECORDED_TOLERANCE * max(1.0, scale)
        assert tolerance == pytest.approx(expected)
