"""Finding and loading factors: sources, plugins, bad input, fresh process."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import kfactor
from kfactor.factors import manifest as manifest_lib
from kfactor.factors import plugins
from kfactor.factors.saved_factor import restored_variables

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures

PLUGIN_DIR = os.path.join(
    fixtures.REPO_ROOT, "plugins", "kfactor-dsprites-factors"
)
PLUGIN_ENTRY_POINT = "dsprites = kfactor_dsprites_factors:FACTORS_DIR"


@pytest.fixture
def no_plugins(monkeypatch):
    monkeypatch.setattr(plugins, "entry_point_sources", lambda: [])


def test_sources_may_be_factor_dirs_or_folders_of_them():
    directory = fixtures.saved_factors()
    factors = kfactor.load_factors(directory)
    assert list(factors) == ["common", "col", "row"]
    assert all(isinstance(f, kfactor.SavedFactor) for f in factors.values())
    assert (factors["row"].role, factors["row"].num_classes) == ("task", 4)
    parent = kfactor.load_factors(os.path.dirname(directory), discover=False)
    assert sorted(parent) == ["col", "common", "row"]
    single = kfactor.load_factors(os.path.join(directory, "row"))
    assert list(single) == ["row"]


def test_loaded_factors_compute_the_in_memory_factors():
    factors = kfactor.load_factors(fixtures.saved_factors())
    factorizer, images = fixtures.factorizer(), fixtures.probe()
    z_common = factors["common"](images)
    np.testing.assert_array_equal(z_common, factorizer.common(images))
    for task, factor in factorizer.task_factors.items():
        np.testing.assert_array_equal(
            factors[task]([images, z_common]),
            factor((images, z_common), training=False),
        )
        np.testing.assert_array_equal(
            factors[task].encode(images),
            factor.encode(images, training=False).mean,
        )


def test_loaded_factor_is_a_frozen_layer_over_the_saved_variables():
    common = kfactor.load_factors(fixtures.saved_factors())["common"]
    assert isinstance(common, keras.layers.TFSMLayer)
    assert not common.trainable and common.trainable_weights == []
    in_memory = fixtures.factorizer().common
    assert common.count_params() == in_memory.count_params()
    saved_model = tf.saved_model.load(
        os.path.join(fixtures.saved_factors(), "common", "saved_model")
    )
    assert len(common.weights) == len(
        restored_variables(saved_model, ["serve"])
    )


@pytest.mark.parametrize("name", ["common", "row"])
def test_loaded_weights_are_the_saved_models_variables_not_copies(name):
    """Assigning through the layer's weights changes the graph's output."""
    factor = kfactor.SavedFactor(os.path.join(fixtures.saved_factors(), name))
    images = fixtures.probe()
    z_common = np.ones((len(images), factor.code_dim), "float32")
    inputs = images if name == "common" else [images, z_common]
    before = np.asarray(factor(inputs))
    kernels = [w for w in factor.weights if len(w.shape) > 1]
    assert kernels
    for kernel in kernels:
        kernel.assign(kernel * 2.0 + 0.5)
    after = np.asarray(factor(inputs))
    assert np.max(np.abs(after - before)) > 1e-3
    # A fresh load reads the files again: the files were not changed.
    again = kfactor.SavedFactor(os.path.join(fixtures.saved_factors(), name))
    np.testing.assert_array_equal(again(inputs), before)


def test_config_roundtrip_needs_unsafe_deserialization():
    factor = kfactor.load_factors(fixtures.saved_factors())["row"]
    config = keras.saving.serialize_keras_object(factor)
    assert json.loads(json.dumps(config)) == config
    with pytest.raises(ValueError, match="enable_unsafe_deserialization"):
        keras.saving.deserialize_keras_object(config)
    with pytest.raises(ValueError, match="safe_mode=False"):
        kfactor.SavedFactor.from_config(factor.get_config())
    clone = keras.saving.deserialize_keras_object(config, safe_mode=False)
    assert isinstance(clone, kfactor.SavedFactor)
    assert clone.get_config() == factor.get_config()
    assert "filepath" not in clone.get_config()
    images = fixtures.probe()
    z_common = np.zeros((len(images), factor.code_dim), "float32")
    np.testing.assert_array_equal(
        clone([images, z_common]), factor([images, z_common])
    )


def test_project_saved_factors_and_plugins_are_discovered(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    fixtures.copy_factors(tmp_path / "saved_factors" / "tiny")
    site = tmp_path / "site"
    package = site / "tiny_factor_plugin"
    package.mkdir(parents=True)
    shutil.copytree(fixtures.other_saved_factors(), package / "factors")
    (package / "__init__.py").write_text(
        "import os\n"
        "FACTORS_DIR = os.path.join(os.path.dirname(__file__), 'factors')\n"
        "def factors_dir():\n    return FACTORS_DIR\n"
    )
    fixtures.make_dist_info(
        str(site), "tiny-plugin", ["other = tiny_factor_plugin:factors_dir"]
    )
    monkeypatch.syspath_prepend(str(site))
    sources = plugins.discover_sources()
    assert [label for label, _ in sources][0] == "project saved_factors/"
    assert ("plugin 'other'", str(package / "factors")) in sources
    # Both sources hold a factor named `common`, with different weights.
    with pytest.raises(ValueError, match="different weights"):
        kfactor.load_factors()
    project = kfactor.load_factors("saved_factors")
    assert sorted(project) == ["col", "common", "row"]


@pytest.mark.parametrize(
    "module, target",
    [("path_plugin", "FACTORS_DIR"), ("function_plugin", "factors_dir")]
    + [("module_plugin", None)],
)
def test_an_entry_point_may_be_a_path_a_function_or_a_module(
    tmp_path, monkeypatch, module, target
):
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    package = site / module
    shutil.copytree(fixtures.saved_factors(), package)
    (package / "__init__.py").write_text(
        "import os\n"
        "FACTORS_DIR = os.path.dirname(__file__)\n"
        "def factors_dir():\n    return FACTORS_DIR\n"
    )
    value = package.name + (f":{target}" if target else "")
    fixtures.make_dist_info(
        str(site), f"dist-{package.name}", [f"tiny = {value}"]
    )
    monkeypatch.syspath_prepend(str(site))
    assert sorted(kfactor.load_factors()) == ["col", "common", "row"]


def test_duplicate_plugin_names_are_an_error(tmp_path, monkeypatch):
    site = tmp_path / "site"
    for dist in ("first-dist", "second-dist"):
        fixtures.make_dist_info(str(site), dist, ["same = os.path:sep"])
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ValueError, match="unique plugin names.*'same'"):
        plugins.entry_point_sources()


def test_the_same_factor_in_two_sources_is_loaded_once(tmp_path):
    copy = fixtures.copy_factors(tmp_path / "copy")
    factors = kfactor.load_factors(fixtures.saved_factors(), copy)
    assert factors["row"].directory == os.path.join(
        fixtures.saved_factors(), "row"
    )


def test_shipped_plugin_package_is_discovered(tmp_path, monkeypatch):
    with open(os.path.join(PLUGIN_DIR, "setup.py")) as f:
        assert PLUGIN_ENTRY_POINT in f.read()
    site = tmp_path / "site"
    fixtures.make_dist_info(
        str(site), "kfactor-dsprites-factors", [PLUGIN_ENTRY_POINT]
    )
    monkeypatch.syspath_prepend(PLUGIN_DIR)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    factors = kfactor.load_factors()
    assert factors["common"].role == "common"
    assert {f.role for f in factors.values()} == {"common", "task"}
    logits = kfactor.assemble(factors)(np.zeros((2, 64, 64, 1), "float32"))
    assert sorted(logits) == sorted(set(factors) - {"common"})


@pytest.mark.large
def test_shipped_plugin_package_pip_installs(tmp_path):
    source = shutil.copytree(PLUGIN_DIR, tmp_path / "source")  # builds here
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        + ["--no-build-isolation", "--target", str(target), str(source)],
        check=True,
    )
    code = (
        "import sys, kfactor; sys.path.insert(0, sys.argv[1]); "
        "print(sorted(kfactor.load_factors()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        cwd=tmp_path,
        env=fixtures.subprocess_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "'common'" in result.stdout


def test_no_source_and_nothing_discovered(tmp_path, monkeypatch, no_plugins):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="Expected factor sources"):
        kfactor.load_factors()
    with pytest.raises(FileNotFoundError, match="Expected factors under"):
        kfactor.load_factors(str(tmp_path))


def test_bad_sources_are_named(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        kfactor.load_factors(str(a_file))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        kfactor.load_factors(str(tmp_path / "missing"))
    with pytest.raises(NotADirectoryError, match="a file"):
        kfactor.SavedFactor(str(a_file))


def test_broken_factor_directories_are_named(tmp_path):
    copy = fixtures.copy_factors(tmp_path / "f")
    row, col = os.path.join(copy, "row"), os.path.join(copy, "col")
    common = os.path.join(copy, "common")

    os.remove(os.path.join(row, manifest_lib.MANIFEST_FILE))
    with pytest.raises(manifest_lib.FactorFormatError, match="manifest"):
        kfactor.load_factors(copy)
    shutil.rmtree(os.path.join(col, "saved_model"))
    with pytest.raises(manifest_lib.FactorFormatError, match="no saved_model"):
        kfactor.SavedFactor(col)
    with open(os.path.join(common, "saved_model", "saved_model.pb"), "wb") as f:
        f.write(b"not a protobuf")
    with pytest.raises(manifest_lib.FactorFormatError, match="corrupt"):
        kfactor.SavedFactor(common)


def test_a_saved_model_without_serve_is_named(tmp_path):
    common = os.path.join(fixtures.copy_factors(tmp_path / "f"), "common")
    saved_model = os.path.join(common, "saved_model")
    shutil.rmtree(saved_model)
    tf.saved_model.save(tf.Module(), saved_model)
    with pytest.raises(
        manifest_lib.FactorFormatError, match="'serve' endpoint.*re-save"
    ):
        kfactor.SavedFactor(common)


def test_corrupt_variables_are_refused(tmp_path):
    row = os.path.join(fixtures.copy_factors(tmp_path / "f"), "row")
    variables = os.path.join(row, "saved_model", "variables")
    data = [n for n in os.listdir(variables) if n.startswith("variables.data")]
    with open(os.path.join(variables, data[0]), "r+b") as f:
        f.seek(64)
        f.write(b"\x7f\x7f\x7f\x7f")
    with pytest.raises(manifest_lib.FactorFormatError, match="corrupt"):
        kfactor.SavedFactor(row)


def test_edited_weights_or_manifests_are_refused(tmp_path):
    copy = fixtures.copy_factors(tmp_path / "f")
    row, col = os.path.join(copy, "row"), os.path.join(copy, "col")
    fixtures.edit_manifest(
        row, lambda m: m.update(weights_fingerprint="sha256:0")
    )
    with pytest.raises(manifest_lib.FactorFormatError, match="fingerprint"):
        kfactor.SavedFactor(row)
    fixtures.edit_manifest(col, lambda m: m.update(format_version=2))
    with pytest.raises(manifest_lib.FactorFormatError, match="upgrade"):
        kfactor.load_factors(copy)
    fixtures.edit_manifest(col, lambda m: m.update(format_version=1, note="x"))
    with pytest.warns(manifest_lib.FactorFormatWarning, match="'note'"):
        kfactor.load_factors(col)

    def drop_created(manifest):
        del manifest["note"], manifest["created"]

    fixtures.edit_manifest(col, drop_created)
    with pytest.raises(manifest_lib.FactorFormatError, match="'created'"):
        kfactor.load_factors(col)


def test_loading_needs_neither_the_encoder_code_nor_pickles(tmp_path):
    """A fresh process loads factors whose encoder uses a test-only layer."""

    @keras.saving.register_keras_serializable(package="test_only")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    inputs = keras.Input(fixtures.TINY_SHAPE)
    encoder = keras.Model(inputs, fixtures.tiny_encoder()(Doubler()(inputs)))
    factorizer = kfactor.Factorizer(
        fixtures.factorizer().teacher,
        common=encoder,
        tasks={"row": fixtures.tiny_encoder(None, name="row_encoder")},
    )
    directory = str(tmp_path / "factors")
    factorizer.save_factors(directory)
    images = fixtures.probe()
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "expected.npy", factorizer(images)["row"])
    code = textwrap.dedent(
        """
        import pickle, sys
        import numpy as np
        def no_pickle(*args, **kwargs):
            raise AssertionError("unpickled")
        pickle.load = pickle.loads = no_pickle
        import kfactor
        assert "tests" not in sys.modules
        model = kfactor.assemble(kfactor.load_factors(sys.argv[1]))
        images = np.load(sys.argv[2])
        got = np.asarray(model(images)["row"])
        print(float(np.max(np.abs(got - np.load(sys.argv[3])))))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, directory]
        + [str(tmp_path / "images.npy"), str(tmp_path / "expected.npy")],
        cwd=tmp_path,
        env=fixtures.subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.split()[-1]) <= 1e-5
