"""Versions: manifests of an older and a newer kfactor, the same format or a
newer one."""

import os
import warnings

import kfactor
from kfactor.factors import manifest as manifest_lib
from kfactor.factors import upgrade

import numpy as np
import pytest

from tests import fixtures

SHIPPED = os.path.join(fixtures.REPO_ROOT, "saved_factors", "dsprites")


def test_the_old_format_without_probe_keys_loads_quietly(tmp_path):
    """Task factors saved before probe_images/probe_logits existed."""
    copy = fixtures.copy_factors(tmp_path / "f")

    def drop_probe(manifest):
        manifest.pop("probe_images", None)
        manifest.pop("probe_logits", None)

    for task in ("row", "col"):
        fixtures.edit_manifest(os.path.join(copy, task), drop_probe)
    with warnings.catch_warnings():
        warnings.simplefilter("error", manifest_lib.FactorFormatWarning)
        factors = kfactor.load_factors(copy)
    assert "probe_logits" not in factors["row"].manifest


def test_unknown_optional_keys_of_a_newer_kfactor_load_with_a_warning(
    tmp_path,
):
    copy = fixtures.copy_factors(tmp_path / "f")
    row = os.path.join(copy, "row")

    def newer(manifest):
        manifest["calibration"] = {"temperature": 1.5}
        manifest["license"] = "CC-BY-4.0"
        manifest["versions"]["kfactor"] = "9.1.0"

    fixtures.edit_manifest(row, newer)
    with pytest.warns(manifest_lib.FactorFormatWarning) as record:
        factor = kfactor.SavedFactor(row)
    message = str(record[0].message)
    assert "['calibration', 'license']" in message
    assert row in message
    assert factor.num_classes == 4


def test_a_newer_format_version_is_one_upgrade_error(tmp_path):
    copy = fixtures.copy_factors(tmp_path / "f")
    row = os.path.join(copy, "row")

    def newer(manifest):
        manifest["format_version"] = manifest_lib.FORMAT_VERSION + 1
        manifest["versions"]["kfactor"] = "9.1.0"
        manifest["new_required"] = [1, 2]  # what it would add
        del manifest["code_dim"]  # what it might drop

    fixtures.edit_manifest(row, newer)
    with pytest.raises(manifest_lib.FactorFormatError) as info:
        kfactor.load_factors(row)
    message = str(info.value)
    assert "upgrade kfactor to >= 9.1.0" in message
    assert "missing" not in message and "new_required" not in message


def test_a_newer_format_version_without_a_writer_version(tmp_path):
    manifest = {"format_version": manifest_lib.FORMAT_VERSION + 1}
    with pytest.raises(manifest_lib.FactorFormatError, match="upgrade kfactor"):
        manifest_lib.validate_manifest(manifest)


def test_a_writer_refuses_unknown_keys(tmp_path):
    manifest = manifest_lib.read_manifest(
        os.path.join(fixtures.saved_factors(), "row")
    )
    with pytest.raises(manifest_lib.FactorFormatError, match="unknown keys"):
        manifest_lib.write_manifest({**manifest, "colour": 1}, str(tmp_path))


def test_the_shipped_factors_are_in_the_current_format():
    for directory in kfactor.factors.plugins.factor_directories(SHIPPED):
        manifest = manifest_lib.read_manifest(directory)
        assert manifest["format_version"] == manifest_lib.FORMAT_VERSION
        if manifest["role"] == manifest_lib.TASK:
            assert "probe_logits" in manifest, directory


def test_record_probe_logits_upgrades_old_task_manifests(tmp_path):
    copy = fixtures.copy_factors(tmp_path / "f")
    row = os.path.join(copy, "row")
    recorded = manifest_lib.read_manifest(row)["probe_logits"]

    def drop_probe(manifest):
        del manifest["probe_images"], manifest["probe_logits"]

    fixtures.edit_manifest(row, drop_probe)
    assert upgrade.record_probe_logits(copy) == [row]
    again = manifest_lib.read_manifest(row)["probe_logits"]
    np.testing.assert_allclose(again, recorded, atol=1e-5)
    assert upgrade.record_probe_logits(copy) == []  # nothing left to do
    assert sorted(os.listdir(row)) == ["kfactor.json", "saved_model"]
