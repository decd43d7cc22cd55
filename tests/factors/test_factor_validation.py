"""Bad input to saved factors, assembled and exported models (issue 14).

Each test asserts the error type and the words that name the fix. The
crash-safe overwrite, with SIGKILLed savers, is in test_overwrite_crash.py.
"""

import json
import os

import kfactor
from kfactor import validation
from kfactor.factors import manifest as manifest_lib

import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures

FactorFormatError = manifest_lib.FactorFormatError
NonFiniteError = validation.NonFiniteError


@pytest.fixture(scope="module")
def factors():
    return kfactor.load_factors(fixtures.saved_factors())


@pytest.fixture(scope="module")
def assembled(factors):
    return kfactor.assemble(factors)


def keep_probe_consistent(manifest):
    """The probe keys of an edited manifest, valid again: only the graph
    can tell the edit then (a common factor has none; a task factor's
    probe_logits have num_classes columns)."""
    if manifest["role"] == manifest_lib.COMMON:
        manifest.pop("probe_images", None)
        manifest.pop("probe_logits", None)
    elif "probe_logits" in manifest:
        width = manifest["num_classes"]
        manifest["probe_logits"] = [
            (row + [0.0] * width)[:width] for row in manifest["probe_logits"]
        ]


def edit_manifest(directory, **changes):
    path = os.path.join(directory, manifest_lib.MANIFEST_FILE)
    with open(path) as f:
        manifest = json.load(f)
    manifest.update(changes)
    keep_probe_consistent(manifest)
    with open(path, "w") as f:
        json.dump(manifest, f)


# === Manifest vs graph ===


@pytest.mark.parametrize(
    "factor, changes, words",
    [
        ("common", {"code_dim": 7}, "code_dim=7 in the manifest.*code_dim=6"),
        ("row", {"code_dim": 7}, "code_dim=7 in the manifest.*code_dim=6"),
        ("row", {"num_classes": 5}, "num_classes=5.*num_classes=4"),
        (
            "row",
            {"role": "common", "task": None, "num_classes": None},
            "role='common' in the manifest.*role='task'",
        ),
    ],
)
def test_manifest_fields_are_checked_against_the_graph(
    tmp_path, factor, changes, words
):
    directory = fixtures.copy_factors(tmp_path / "factors")
    edit_manifest(os.path.join(directory, factor), **changes)
    with pytest.raises(FactorFormatError, match=words + ".*re-save"):
        kfactor.load_factors(directory)


# === load_factors and assemble ===


@pytest.mark.parametrize("sources", [[], ["a", "b"]])
def test_load_factors_refuses_a_list(sources):
    with pytest.raises(TypeError, match=r"unpack a list: load_factors\(\*"):
        kfactor.load_factors(sources)


def test_assembling_the_common_factor_alone_is_refused(factors):
    with pytest.raises(ValueError, match="at least one task factor.*load"):
        kfactor.assemble({"common": factors["common"]})


# === SavedFactor and assembled model calls ===


@pytest.mark.parametrize(
    "images, words",
    [
        (np.zeros((2, 12, 16, 1), "float32"), r"\[batch, 16, 16, 1\].*resize"),
        (np.zeros((16, 16, 1), "float32"), r"one axis short.*images\[None\]"),
        (np.zeros((2, 16, 16, 1), "uint8"), "dtype uint8.*/ 255"),
        (np.full((2, 16, 16, 1), 255.0, "float32"), r"range \[0, 1\].*255"),
    ],
)
def test_saved_factor_refuses_bad_images(factors, images, words):
    with pytest.raises(ValueError, match=f"factor 'common'.*{words}"):
        factors["common"](images)


def test_saved_factor_refuses_nan_images(factors):
    images = fixtures.probe(2)
    images[0, 3, 3, 0] = np.nan
    with pytest.raises(NonFiniteError, match="finite images.*repair"):
        factors["common"](images)
    with pytest.raises(NonFiniteError, match="finite images"):
        factors["row"].encode(images)


def test_saved_task_factor_refuses_a_wrong_code(factors):
    with pytest.raises(ValueError, match=r"z_common shaped \[batch, 6\]"):
        factors["row"]([fixtures.probe(2), np.zeros((2, 5), "float32")])


def test_assembled_model_refuses_0_255_images(assembled):
    """uint8 pixels get their own message (tests/test_raw_messages.py)."""
    pixels = (fixtures.probe(2).clip(0, 1) * 255).round().astype("float32")
    with pytest.raises(ValueError, match=r"value range \[0, 1\].*255"):
        assembled(pixels)


def test_assembled_model_refuses_nan_images(assembled):
    images = fixtures.probe(2)
    images[1] = np.nan
    with pytest.raises(NonFiniteError, match="finite images"):
        assembled(images)


def test_exported_signature_refuses_uint8_and_0_255(assembled, tmp_path):
    directory = str(tmp_path / "serving" / "1")
    kfactor.export_for_serving(assembled, directory)
    serve = tf.saved_model.load(directory).signatures["serving_default"]
    pixels = (fixtures.probe(2).clip(0, 1) * 255).astype("uint8")
    with pytest.raises(tf.errors.InvalidArgumentError, match="float tensor"):
        serve(images=tf.constant(pixels))
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"range \[0, 1\].*divide by 255"
    ):
        serve(images=tf.constant(pixels.astype("float32")))
    probe = tf.constant(fixtures.probe(2))
    served = serve(images=probe)["row_logits"]
    np.testing.assert_allclose(served, assembled(probe)["row"], atol=1e-5)


# === save_factors: non-finite weights ===


def test_save_factors_refuses_nan_weights_and_keeps_the_old(tmp_path):
    target = fixtures.copy_factors(tmp_path / "factors")
    before = kfactor.load_factors(target)["common"].weights_fingerprint
    factorizer = fixtures.tiny_factorizer()
    kernel = factorizer.task_factors["col"].head.kernel
    kernel.assign(np.full(kernel.shape, np.nan, kernel.dtype))
    with pytest.raises(NonFiniteError, match="task factor 'col'.*retrain"):
        factorizer.save_factors(target, overwrite=True)
    assert kfactor.load_factors(target)["common"].weights_fingerprint == (
        before
    )
    assert sorted(os.listdir(tmp_path)) == ["factors"]  # no temporary left
    with pytest.raises(NonFiniteError, match="assembled factors"):
        kfactor.assemble(factorizer)
