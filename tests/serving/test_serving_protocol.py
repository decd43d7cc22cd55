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


def test_uint8_signature_takes_integer_pixels_whatever_the_value_range():
    body = {"instances": np.full((2, *SHAPE), 254.0).tolist()}
    images, layout = protocol.parse_images(
        body, SHAPE, (0.0, 1.0), 8, dtype="uint8"
    )
    assert images.dtype == np.uint8 and layout == "row"
    assert int(images.max()) == 254


@pytest.mark.parametrize("value", [0.5, 256.0, -1.0])
def test_uint8_signature_refuses_what_is_not_an_8_bit_pixel(value):
    x = np.zeros((1, *SHAPE))
    x[0, 1, 0, 0] = value
    with pytest.raises(protocol.RequestError) as raised:
        protocol.parse_images(
            {"instances": x.tolist()}, SHAPE, (0.0, 1.0), 8, dtype="uint8"
        )
    message = str(raised.value)
    assert "integers in [0, 255]" in message and "index [1, 0, 0]" in message
    assert "Fix:" in message


def test_0_255_pixels_to_a_float_signature_name_the_uint8_one():
    body = {"instances": np.full((1, *SHAPE), 200.0).tolist()}
    with pytest.raises(protocol.RequestError, match="serving_uint8"):
        protocol.parse_images(body, SHAPE, (0.0, 1.0), 8)
