"""The op allowlist: crafted factors are refused before any call; kfactor's
own factors (every zoo encoder, variational or not, mixed precision) pass."""

import os
import shutil

import kfactor
from kfactor.factors import graph_check
from kfactor.factors import manifest as manifest_lib
from kfactor.factors import saving

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures

SHIPPED = os.path.join(fixtures.REPO_ROOT, "saved_factors", "dsprites")
PLUGIN = os.path.join(
    fixtures.REPO_ROOT,
    "plugins",
    "kfactor-dsprites-factors",
    "kfactor_dsprites_factors",
    "factors",
)


def _crafted_common(directory, marker, body):
    """A common factor whose serve function runs `body(marker)` first."""
    common = fixtures.factorizer().common
    spec = manifest_lib.input_spec(fixtures.TINY_SHAPE)

    def serve(images):
        with tf.control_dependencies([body(marker)]):
            return tf.identity(common(images, training=False))

    manifest = {
        **saving.base_manifest(fixtures.factorizer(), (0.0, 1.0), None),
        "role": manifest_lib.COMMON,
        "name": manifest_lib.COMMON,
        "task": None,
        "num_classes": None,
        "test_accuracy": None,
        "common_fingerprint": "",
    }
    endpoints = {"serve": (serve, [manifest_lib.tensor_spec(spec)])}
    saving.export_factor(directory, manifest, endpoints)
    return directory


def _write(marker):
    return tf.io.write_file(marker, "pwned")


def _print_to_file(marker):
    return tf.print("pwned", output_stream=f"file://{marker}")


@pytest.fixture(scope="module")
def writing_factor(tmp_path_factory):
    root = tmp_path_factory.mktemp("crafted")
    marker = str(root / "written.txt")
    directory = _crafted_common(str(root / "common"), marker, _write)
    assert not os.path.exists(marker)
    return directory, marker


def test_a_factor_that_writes_a_file_is_refused_before_any_call(
    writing_factor,
):
    directory, marker = writing_factor
    with pytest.raises(kfactor.UntrustedFactorError) as info:
        kfactor.load_factors(directory)
    message = str(info.value)
    assert "'WriteFile' in function '__inference_serve" in message
    assert directory in message
    assert "allow_ops=['WriteFile']" in message
    assert "trust_factor=True" in message
    with pytest.raises(kfactor.UntrustedFactorError):
        kfactor.SavedFactor(directory)
    assert not os.path.exists(marker)


def test_trust_factor_and_allow_ops_are_the_opt_outs(writing_factor):
    directory, marker = writing_factor
    images = fixtures.probe(2)
    trusted = kfactor.load_factors(directory, trust_factor=True)["common"]
    trusted(images)
    assert os.path.exists(marker)  # what the check kept from running
    os.remove(marker)
    allowed = kfactor.SavedFactor(directory, allow_ops=["WriteFile"])
    assert allowed.get_config()["allow_ops"] == ["WriteFile"]
    with pytest.raises(TypeError, match="list of op names"):
        kfactor.SavedFactor(directory, allow_ops="WriteFile")


def test_print_to_a_file_is_refused(tmp_path):
    marker = str(tmp_path / "printed.txt")
    directory = _crafted_common(str(tmp_path / "c"), marker, _print_to_file)
    with pytest.raises(kfactor.UntrustedFactorError, match="'PrintV2'"):
        kfactor.load_factors(directory)
    assert not os.path.exists(marker)


def test_saver_ops_in_a_callable_function_are_refused(tmp_path):
    """`SaveV2` is allowed in the checkpoint functions only."""

    def save(marker):
        return tf.raw_ops.SaveV2(
            prefix=marker,
            tensor_names=["x"],
            shape_and_slices=[""],
            tensors=[tf.zeros(1)],
        )

    marker = str(tmp_path / "ckpt")
    directory = _crafted_common(str(tmp_path / "c"), marker, save)
    with pytest.raises(kfactor.UntrustedFactorError, match="'SaveV2' in"):
        kfactor.SavedFactor(directory)


def test_a_corrupt_graph_is_a_format_error(tmp_path):
    directory = fixtures.copy_factors(tmp_path / "f")
    pb = os.path.join(directory, "common", "saved_model", "saved_model.pb")
    with open(pb, "wb") as f:
        f.write(b"\xff" * 64)
    with pytest.raises(kfactor.FactorFormatError, match="protocol buffer"):
        graph_check.check_factor_graph(os.path.join(directory, "common"))


@pytest.mark.parametrize("source", [SHIPPED, PLUGIN])
def test_the_shipped_factors_pass(source):
    for directory in kfactor.factors.plugins.factor_directories(source):
        graph_check.check_factor_graph(directory)


def _tiny(latent, normalization=None, name="e"):
    return kfactor.zoo.simple_conv64(
        latent,
        widths=fixtures.TINY_WIDTHS,
        input_shape=fixtures.TINY_SHAPE,
        normalization=normalization,
        name=name,
    )


def _simple_conv(normalization, variational):
    teacher = kfactor.zoo.multitask_teacher(
        {"a": 3}, encoder=_tiny(6, normalization, "t")
    )
    task = kfactor.TaskFactor(
        _tiny(None, normalization, "a"), variational=variational
    )
    return teacher, _tiny(6, normalization, "c"), {"a": task}


def _wide_resnet():
    def wrn(name):
        return kfactor.zoo.wide_resnet(
            depth=10,
            width=1,
            include_top=False,
            pooling="avg",
            input_shape=(32, 32, 3),
            name=name,
        )

    teacher = kfactor.zoo.multitask_teacher({"a": 3}, encoder=wrn("t"))
    return teacher, wrn("c"), {"a": wrn("a")}


def _applications(name, **kwargs):
    shape = (32, 32, 3)
    classifier = getattr(keras.applications, name)(
        weights=None, classes=3, input_shape=shape, **kwargs
    )
    teacher = kfactor.zoo.as_task_teacher(classifier, task="a")
    encode = kfactor.zoo.applications_encoder
    common = encode(name, shape, latent_dim=8, **kwargs)
    return teacher, common, {"a": encode(name, shape, **kwargs)}


ZOO = {
    "simple_conv64-variational": lambda: _simple_conv(None, True),
    "simple_conv64-deterministic": lambda: _simple_conv(None, False),
    "simple_conv64-batch": lambda: _simple_conv("batch", True),
    "simple_conv64-keras_batch": lambda: _simple_conv("keras_batch", False),
    "wide_resnet": _wide_resnet,
    "MobileNetV2": lambda: _applications("MobileNetV2", alpha=0.35),
    "ResNet50": lambda: _applications("ResNet50"),
}
_LARGE = pytest.mark.large  # 10-40 s each on 2 CPU cores
_APPLICATIONS = ("MobileNetV2", "ResNet50")
#: Each zoo encoder under float32; the mixed policies on the smallest.
CASES = [
    *[(name, "float32") for name in ZOO if name not in _APPLICATIONS],
    *[pytest.param(name, "float32", marks=_LARGE) for name in _APPLICATIONS],
    ("simple_conv64-batch", "mixed_float16"),
    ("simple_conv64-variational", "mixed_bfloat16"),
    pytest.param("MobileNetV2", "mixed_float16", marks=_LARGE),
]


@pytest.fixture
def policy():
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("encoder,dtype_policy", CASES)
def test_every_factor_kfactor_saves_passes(
    encoder, dtype_policy, policy, tmp_path
):
    policy(dtype_policy)
    teacher, common, tasks = ZOO[encoder]()
    factorizer = kfactor.Factorizer(teacher, common=common, tasks=tasks)
    paths = factorizer.save_factors(str(tmp_path / "f"))
    seen = set()
    for directory in paths.values():
        proto = graph_check.read_saved_model(
            os.path.join(directory, manifest_lib.SAVED_MODEL_DIR)
        )
        assert graph_check.refused_ops(proto) == []
        ops, reachable = graph_check.graph_ops(proto)
        seen |= set().union(*(ops[f] for f in reachable))
    # The derived list holds what the exports use (and is no wider).
    assert seen <= graph_check.DERIVED_OPS
    loaded = kfactor.load_factors(str(tmp_path / "f"))
    images = np.zeros((1, *factorizer.image_shape), "float32")
    assert loaded["common"](images).shape == (1, factorizer.code_dim)


def test_the_allowlist_holds_no_file_network_or_process_op():
    forbidden = {
        "WriteFile",
        "ReadFile",
        "MatchingFiles",
        "SaveV2",
        "RestoreV2",
        "Save",
        "Restore",
        "PrintV2",
        "Print",
        "DebugIdentity",
        "DebugIdentityV2",
        "PyFunc",
        "EagerPyFunc",
        "ImmutableConst",
    }
    assert not forbidden & graph_check.ALLOWED_OPS
    assert not graph_check.SAVER_OPS & graph_check.ALLOWED_OPS


def test_a_copied_factor_still_passes(tmp_path):
    directory = shutil.copytree(
        os.path.join(fixtures.saved_factors(), "row"), tmp_path / "row"
    )
    graph_check.check_factor_graph(str(directory))
