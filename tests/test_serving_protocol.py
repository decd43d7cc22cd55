"""TF Serving's predict format, in process (no server, no kserve needed)."""

from kfactor import cli
from kfactor.serving import protocol
from kfactor.serving import server

import numpy as np
import pytest
from absl import flags

SHAPE = (2, 2, 1)
SIGNATURES = {"serving_default": None, "shape": None}


def parse(body, max_batch_size=4):
    request = protocol.parse_body(body)
    return protocol.parse_images(request, SHAPE, (0.0, 1.0), max_batch_size)


def test_row_and_columnar_bodies_give_the_same_batch():
    image = [[[0.1], [0.2]], [[0.3], [0.4]]]
    row, layout = parse(b'{"instances": [%s]}' % str(image).encode())
    assert layout == "row" and row.shape == (1, *SHAPE)
    named, _ = parse({"instances": [{"images": image}]})
    columnar, layout = parse({"inputs": {"images": [image]}})
    assert layout == "columnar"
    np.testing.assert_array_equal(row, named)
    np.testing.assert_array_equal(row, columnar)


def test_answers_are_tf_servings_row_and_columnar_json():
    outputs = {
        "logits": np.array([[1.0, 2.0], [3.0, 4.0]]),
        "p": np.ones((2, 2)),
    }
    row = protocol.format_outputs(outputs, "row")
    assert row == {
        "predictions": [
            {"logits": [1.0, 2.0], "p": [1.0, 1.0]},
            {"logits": [3.0, 4.0], "p": [1.0, 1.0]},
        ]
    }
    columnar = protocol.format_outputs(outputs, "columnar")
    assert columnar == {
        "outputs": {"logits": [[1.0, 2.0], [3.0, 4.0]], "p": [[1.0] * 2] * 2}
    }


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"instances": [', "Malformed JSON"),
        (b"\xff", "not UTF-8"),
        (b"[1, 2]", "a JSON list"),
        ({"instances": [[[[0.5]]]]}, "Received: shape [1, 1, 1, 1]"),
        ({"instances": [[[[255.0], [0.0]], [[0.0], [0.0]]]]}, "by 255"),
        ({"instances": [[[[1.5], [0.0]], [[0.0], [0.0]]]]}, "rescale"),
        ({"instances": [[[[float("nan")], [0]], [[0], [0]]]]}, "finite"),
        ({"instances": [[[["a"], [0]], [[0], [0]]]]}, "numbers"),
        ({"instances": []}, "empty batch"),
        ({"instances": [np.zeros(SHAPE).tolist()] * 5}, "at most 4"),
        ({"instances": 3}, "a list of images"),
        ({"inputs": {"pixels": []}}, "the input named 'images'"),
        ({"instances": [], "inputs": []}, "Received: both"),
    ],
)
def test_a_bad_body_names_the_fix(body, message):
    with pytest.raises(protocol.RequestError, match="Fix:") as raised:
        parse(body)
    assert message in str(raised.value)


def test_an_unknown_signature_lists_the_known_ones():
    assert protocol.check_signature_name({}, SIGNATURES) == "serving_default"
    with pytest.raises(protocol.RequestError, match="'serving_default'"):
        protocol.check_signature_name({"signature_name": "x"}, SIGNATURES)


def test_the_highest_version_folder_is_served(tmp_path):
    for version in ("1", "3", "tmp"):
        (tmp_path / version).mkdir()
        (tmp_path / version / server.SAVED_MODEL_FILE).write_bytes(b"")
    assert server.find_version(tmp_path) == (3, str(tmp_path / "3"))
    assert server.find_version(tmp_path / "1") == (1, str(tmp_path / "1"))
    with pytest.raises(FileNotFoundError, match="kfactor export"):
        server.find_version(tmp_path / "missing")


def test_serve_without_the_extra_says_how_to_install_it(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / server.SAVED_MODEL_FILE).write_bytes(b"")

    def no_kserve():
        raise ImportError(f"no kserve. Fix: {server.SERVE_INSTALL}.")

    monkeypatch.setattr(server, "import_kserve", no_kserve)
    flags.FLAGS(["kfactor"])
    with pytest.raises(SystemExit):
        cli.run_one_line_errors(["kfactor", "serve", str(tmp_path)])
    assert "pip install -e '.[serve]'" in capsys.readouterr().err
