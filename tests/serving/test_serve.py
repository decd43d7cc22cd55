"""`kfactor serve` as a real server process, answering real HTTP requests.

The export is the tiny saved factors' (`tasks row, col`, 16x16x1 images).
Needs the `[serve]` extra (kserve): skipped without it.
"""

import json
import shutil
import subprocess
import time

import kfactor
from kfactor.factors import manifest
from kfactor.factors.export import SERVING_DEFAULT
from kfactor.factors.export import SERVING_UINT8
from kfactor.lab.demo import DemoConfig
from kfactor.serving import server as server_lib

import numpy as np
import pytest

from tests import fixtures
from tests import serving_client
from tests.serving_client import request

try:  # not importorskip: kserve parses sys.argv (pytest's) on import
    server_lib.import_kserve()
except ImportError:
    pytest.skip(
        "kfactor serve needs the [serve] extra: pip install -e '.[serve]'",
        allow_module_level=True,
    )

MAX_BATCH = 8  # the server's --max_batch_size here: a small over-limit body
SHAPE = (16, 16, 1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = kfactor.assemble(kfactor.load_factors(fixtures.saved_factors()))
    directory = tmp_path_factory.mktemp("serve") / "serving"
    kfactor.export_for_serving(model, directory / "1")
    return model, directory


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    flags = [f"--max_batch_size={MAX_BATCH}"]
    with serving_client.running(exported[1], log, *flags) as running:
        yield running


def images(num=3):
    """Seeded images in [0, 1], the pixels the factors take."""
    return manifest.probe_images(manifest.input_spec(SHAPE), num=num)


def in_process(model, x):
    """What every signature should answer, from the in-memory model."""
    logits = {t: np.asarray(v) for t, v in model(x, training=False).items()}
    answers = {}
    for task, values in logits.items():
        probabilities = np.exp(values - values.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        answers[task] = {"logits": values, "probabilities": probabilities}
    answers[SERVING_DEFAULT] = {
        f"{task}_{key}": value
        for task, outputs in answers.items()
        for key, value in outputs.items()
    }
    return answers


def good_request(server):
    body = json.dumps({"instances": images(1).tolist()})
    code, answer = request(server.predict_url, body)
    assert code == 200, answer
    return answer


@pytest.mark.parametrize("signature", [SERVING_DEFAULT, "row", "col"])
@pytest.mark.parametrize("layout", ["row", "columnar"])
def test_every_signature_answers_the_in_process_logits(
    server, exported, signature, layout
):
    model, _ = exported
    x = images()
    body = {"signature_name": signature}
    if signature == SERVING_DEFAULT and layout == "row":
        body = {}  # the default serves every task
    if layout == "row":
        body["instances"] = [{"images": image} for image in x.tolist()]
    else:
        body["inputs"] = {"images": x.tolist()}
    code, answer = request(server.predict_url, json.dumps(body))
    assert code == 200, answer
    want = in_process(model, x)[signature]
    if layout == "row":
        assert len(answer["predictions"]) == len(x)
        got = {
            key: np.array([p[key] for p in answer["predictions"]])
            for key in want
        }
    else:
        got = {key: np.array(value) for key, value in answer["outputs"].items()}
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-5, rtol=0)


def test_row_instances_may_be_bare_images(server, exported):
    x = images(2)
    code, answer = request(
        server.predict_url, json.dumps({"instances": x.tolist()})
    )
    assert code == 200
    want = in_process(exported[0], x)[SERVING_DEFAULT]["row_logits"]
    got = np.array([p["row_logits"] for p in answer["predictions"]])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_serving_uint8_answers_8_bit_pixels_as_their_float_copy(
    server, exported
):
    pixels = (images(2) * 255).round()
    code, answer = request(
        server.predict_url,
        json.dumps(
            {"signature_name": SERVING_UINT8, "instances": pixels.tolist()}
        ),
    )
    assert code == 200, answer
    want = in_process(exported[0], (pixels / 255).astype("float32"))
    got = np.array([p["row_logits"] for p in answer["predictions"]])
    np.testing.assert_allclose(
        got, want[SERVING_DEFAULT]["row_logits"], atol=1e-5, rtol=0
    )


def _nan_body():
    x = images(1)
    x[0, 3, 4, 0] = np.nan
    return json.dumps({"instances": x.tolist()})  # the token NaN


BAD_REQUESTS = {
    "wrong image size": (
        json.dumps({"instances": np.zeros((1, 32, 32, 1)).tolist()}),
        "Expected images of shape [batch, 16, 16, 1]",
    ),
    "0-255 pixels": (
        json.dumps({"instances": (images(1) * 255).round().tolist()}),
        "divide 0-255 pixels by 255",
    ),
    "NaN": (_nan_body(), "Expected finite pixel values"),
    "unknown signature": (
        json.dumps({"signature_name": "shape", "instances": [[0]]}),
        "Unknown signature_name 'shape'",
    ),
    "malformed JSON": ('{"instances": [[[0.5]]', "Malformed JSON"),
    "empty batch": (json.dumps({"instances": []}), "empty batch"),
    "batch over the limit": (
        json.dumps({"instances": images(MAX_BATCH + 1).tolist()}),
        f"at most {MAX_BATCH} images",
    ),
    "no instances or inputs": (
        json.dumps({"images": []}),
        'Expected exactly one of "instances"',
    ),
    "ragged images": (
        json.dumps({"instances": [[[0.5]], [[0.5], [0.5]]]}),
        "rectangular array of numbers",
    ),
    "one image, no batch": (
        json.dumps({"instances": images(1)[0].tolist()}),
        "Received: one image of shape [16, 16, 1]",
    ),
}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_a_bad_request_gets_400_with_the_fix_and_serving_goes_on(
    server, name, content_type
):
    body, expected = BAD_REQUESTS[name]
    code, answer = request(server.predict_url, body, content_type)
    assert code == 400, answer
    assert list(answer) == ["error"]  # TF Serving's error format
    assert expected in answer["error"]
    assert "Fix:" in answer["error"]
    good_request(server)


def test_status_health_and_unknown_model(server):
    code, status = request(server.status_url)
    assert code == 200
    (version,) = status["model_version_status"]
    assert version["version"] == "1"
    assert version["state"] == "AVAILABLE"
    assert request(f"{server.url}/v2/health/live")[0] == 200
    assert request(f"{server.url}/v2/health/ready")[0] == 200
    code, answer = request(f"{server.url}/v1/models/other")
    assert code == 404
    assert "kfactor" in answer["error"]
    code, answer = request(f"{server.url}/v1/models/other:predict", "{}")
    assert code == 404


def _answer(url, body):
    """`(HTTP status or the OSError's name, error message, seconds)`."""
    started = time.monotonic()
    try:
        code, answer = request(url, body, timeout=5)
        message = answer.get("error", "") if isinstance(answer, dict) else ""
    except OSError as err:
        code, message = type(err).__name__, str(err)
    return code, message, time.monotonic() - started


def test_requests_while_starting_and_stopping_get_a_clear_answer(
    exported, tmp_path
):
    """Refused, 503 "not ready" or answered: never a hang, never a 500."""
    server = serving_client.Server(exported[1], tmp_path / "server.log")
    body = json.dumps({"instances": images(1).tolist()})
    starting, stopping = [], []
    try:
        deadline = time.monotonic() + serving_client.START_TIMEOUT_S
        while time.monotonic() < deadline and server.process.poll() is None:
            starting.append(_answer(server.predict_url, body))
            if starting[-1][0] == 200:
                break
            time.sleep(0.02)
        assert starting[-1][0] == 200, (starting[-3:], server.log_tail())
        server.process.send_signal(serving_client.signal.SIGTERM)
        deadline = time.monotonic() + 60
        while server.process.poll() is None and time.monotonic() < deadline:
            stopping.append(_answer(server.predict_url, body))
            time.sleep(0.02)
    finally:
        returncode = server.stop()
    answers = starting + stopping
    codes = {code for code, _, _ in answers}
    assert codes <= {200, 503, "ConnectionRefusedError", "URLError"}, codes
    for code, message, _ in answers:
        if code == 503:
            assert "Model with name kfactor is not ready" in message
    assert max(seconds for _, _, seconds in answers) < 5
    assert returncode == 0, server.log_tail()


# === docs/SERVING.md, on the demo's export ===

SERVING_DOC = serving_client.REPO / "docs" / "SERVING.md"


def doc_block(marker):
    """The lines of the ```bash block after `<!-- serving-test: marker -->`."""
    lines = SERVING_DOC.read_text().splitlines()
    start = lines.index(f"<!-- serving-test: {marker} -->") + 1
    assert lines[start] == "```bash"
    end = lines.index("```", start + 1)
    return lines[start + 1 : end]


def test_the_docs_point_at_the_layout_the_demo_writes(demo_run):
    with open(demo_run / "report.json") as f:
        report = json.load(f)
    assert report["export_dir"] == str(demo_run / "serving" / "1")
    assert (demo_run / "serving" / "1" / "saved_model.pb").is_file()
    text = SERVING_DOC.read_text()
    served = f"{DemoConfig().output_dir}/serving"
    assert f"kfactor serve {served} " in text
    assert f'source="$PWD/{served}",target=/models/kfactor' in text
    assert "storageUri: gs://MY_BUCKET/kfactor/serving" in text
    assert f"gsutil cp -r {served} " in text


def test_the_docs_curl_requests_answer_on_the_demos_export(demo_run, tmp_path):
    if not shutil.which("curl"):
        pytest.skip("needs curl (apt-get install -y curl)")
    server = serving_client.Server(demo_run / "serving", tmp_path / "log")
    try:
        server.wait_available()
        for marker in ("requests", "errors"):
            for line in doc_block(marker):
                command, _, expected = line.partition("# ->")
                command = command.replace(
                    "localhost:8501", f"127.0.0.1:{server.port}"
                )
                done = subprocess.run(
                    ["bash", "-c", command],
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert done.returncode == 0, (line, done.stderr)
                if not expected:
                    continue
                answer = json.loads(done.stdout)
                assert expected.strip() in answer, (line, answer)
                if marker == "errors":
                    assert "Fix:" in answer["error"]
    finally:
        assert server.stop() == 0, server.log_tail()
