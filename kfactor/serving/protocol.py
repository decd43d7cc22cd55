"""TF Serving's REST predict format, checked for a kfactor export.

Pure functions over JSON text and NumPy, with no server in them, so that the
server (`kfactor.serving.server`) and the tests share one definition of what
a request may hold and what its answer looks like.

A predict request is TF Serving's (https://www.tensorflow.org/tfx/serving/
api_rest#predict_api):

- row format: `{"signature_name": S, "instances": [image, ...]}`, each
  instance an image `[H][W][C]` or `{"images": image}`, answered with
  `{"predictions": [{"logits": [...], "probabilities": [...]}, ...]}`, one
  dict per instance;
- columnar format: `{"signature_name": S, "inputs": images}` with `images`
  a batch `[N][H][W][C]` or `{"images": batch}`, answered with
  `{"outputs": {"logits": [[...], ...], "probabilities": [...]}}`.

`signature_name` picks one task's signature (outputs `logits`,
`probabilities`); without it, `serving_default` answers every task
(`<task>_logits`, `<task>_probabilities`). Errors are `{"error": message}`
with HTTP 400, each message saying what is wrong and how to fix it. Like TF
Serving's parser, the body may hold the tokens `NaN` and `Infinity`: they
are parsed, then refused as pixels.
"""

import json

from kfactor.factors.export import INPUT_NAME
from kfactor.factors.export import SERVING_DEFAULT
from kfactor.factors.export import SERVING_UINT8

import numpy as np

#: The most images one request may hold (`kfactor serve --max_batch_size`).
MAX_BATCH_SIZE = 256
ROW_KEY = "instances"
COLUMNAR_KEY = "inputs"
EXAMPLE = '{"instances": [<image [H][W][C]>, ...]}'
UINT8 = "uint8"


class RequestError(ValueError):
    """A request the export cannot answer; its message names the fix."""


def parse_body(body):
    """The request as a dict, from bytes, text or an already parsed dict."""
    if isinstance(body, dict):
        return body
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as err:
            raise RequestError(
                f"Expected a UTF-8 JSON body. Received bytes that are not "
                f"UTF-8 ({err.reason} at byte {err.start}). Fix: send JSON "
                f"text such as {EXAMPLE}."
            ) from err
    try:
        request = json.loads(body)
    except json.JSONDecodeError as err:
        raise RequestError(
            f"Malformed JSON: {err.msg} at line {err.lineno} column "
            f"{err.colno}. Fix: send one JSON object such as {EXAMPLE} "
            "(check brackets, commas and quotes)."
        ) from err
    if not isinstance(request, dict):
        raise RequestError(
            'Expected a JSON object with "instances" or "inputs". '
            f"Received: a JSON {type(request).__name__}. Fix: wrap the "
            f"images as {EXAMPLE}."
        )
    return request


def check_signature_name(request, signatures):
    """The signature `request` asks for (`serving_default` if none)."""
    name = request.get("signature_name", SERVING_DEFAULT)
    if name not in signatures:
        raise RequestError(
            f"Unknown signature_name {name!r}. This model has "
            f'{sorted(signatures)}. Fix: set "signature_name" to one of '
            f"them (a task's name gives that task), or leave it out for "
            f"every task ({SERVING_DEFAULT})."
        )
    return name


def _images_of(request):
    """(nested lists of images, "row" | "columnar") from the request."""
    keys = [k for k in (ROW_KEY, COLUMNAR_KEY) if k in request]
    if len(keys) != 1:
        received = "both" if keys else f"keys {sorted(request)}"
        raise RequestError(
            f'Expected exactly one of "{ROW_KEY}" (row format) or '
            f'"{COLUMNAR_KEY}" (columnar format). Received: {received}. '
            f"Fix: send {EXAMPLE}."
        )
    key = keys[0]
    value = request[key]
    if key == ROW_KEY:
        if not isinstance(value, list):
            raise RequestError(
                f'Expected "{ROW_KEY}" to be a list of images. Received: '
                f"a JSON {type(value).__name__}. Fix: send {EXAMPLE}."
            )
        value = [
            v[INPUT_NAME] if isinstance(v, dict) and INPUT_NAME in v else v
            for v in value
        ]
        return value, "row"
    if isinstance(value, dict):
        if INPUT_NAME not in value:
            raise RequestError(
                f"Expected the input named {INPUT_NAME!r}. Received inputs "
                f'{sorted(value)}. Fix: send {{"{COLUMNAR_KEY}": '
                f'{{"{INPUT_NAME}": [<image>, ...]}}}}.'
            )
        value = value[INPUT_NAME]
    return value, "columnar"


def _shape_text(shape):
    return (
        "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"
    )


def parse_images(
    request, image_shape, value_range, max_batch_size, dtype="float32"
):
    """The request's images as `dtype` `[N, H, W, C]`, checked.

    Args:
        request: the parsed request dict.
        image_shape: `(H, W, C)` the export takes.
        value_range: `(low, high)` of the pixels it was trained on.
        max_batch_size: the most images a request may hold.
        dtype: the signature's input dtype: "float32", or "uint8" for
            `serving_uint8` (integers in [0, 255], whatever `value_range`).

    Returns:
        `(images, format)`, `format` being "row" or "columnar".
    """
    value, layout = _images_of(request)
    expected = _shape_text((None, *image_shape))
    try:
        images = np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError) as err:
        raise RequestError(
            f"Expected numeric images of shape {expected}. Received values "
            f"that are not a rectangular array of numbers ({err}). Fix: "
            "send every image as nested lists of numbers of the same size."
        ) from err
    if images.ndim >= 1 and images.shape[0] == 0:
        raise RequestError(
            "Expected at least one image. Received: an empty batch. Fix: "
            f"send 1 to {max_batch_size} images."
        )
    if images.ndim == len(image_shape):
        raise RequestError(
            f"Expected a batch of images of shape {expected}. Received: one "
            f"image of shape {list(images.shape)}. Fix: wrap it in a list "
            f"({EXAMPLE})."
        )
    if images.ndim >= 1 and images.shape[0] > max_batch_size:
        raise RequestError(
            f"Expected at most {max_batch_size} images per request "
            f"(kfactor serve --max_batch_size). Received: "
            f"{images.shape[0]}. Fix: split the batch into requests of at "
            f"most {max_batch_size} images."
        )
    if tuple(images.shape[1:]) != tuple(image_shape) or images.ndim != 4:
        height, width, channels = image_shape
        raise RequestError(
            f"Expected images of shape {expected} (height, width, channels)."
            f" Received: shape {list(images.shape)}. Fix: resize the images "
            f"to {height}x{width} with {channels} channel(s) before sending."
        )
    finite = np.isfinite(images)
    if not finite.all():
        first = [int(i) for i in np.argwhere(~finite)[0]]
        raise RequestError(
            f"Expected finite pixel values. Received: {int((~finite).sum())} "
            f"NaN or infinite value(s), the first at image {first[0]}, "
            f"index {first[1:]}. Fix: replace missing pixels by a value in "
            f"[{value_range[0]:g}, {value_range[1]:g}]."
        )
    if dtype == UINT8:
        return _as_uint8(images), layout
    low, high = value_range
    lowest, highest = float(images.min()), float(images.max())
    if lowest < low or highest > high:
        hint = (
            "divide 0-255 pixels by 255 (or send them as they are with "
            f'"signature_name": "{SERVING_UINT8}")'
            if high <= 1.0 and 2.0 < highest <= 255.0
            else f"rescale the pixels to [{low:g}, {high:g}]"
        )
        raise RequestError(
            f"Expected pixel values in [{low:g}, {high:g}], the range the "
            f"factors were trained on. Received: values in [{lowest:g}, "
            f"{highest:g}]. Fix: {hint}."
        )
    return images, layout


def _as_uint8(images):
    """`images` as uint8, refused unless every value is an integer in
    [0, 255] (`serving_uint8` rescales them itself)."""
    integral = (images == np.round(images)) & (images >= 0) & (images <= 255)
    if not integral.all():
        first = [int(i) for i in np.argwhere(~integral)[0]]
        value = float(images[tuple(first)])
        raise RequestError(
            f"Expected 8-bit pixels (integers in [0, 255]) for "
            f"{SERVING_UINT8}. Received: {value:g} at image {first[0]}, "
            f"index {first[1:]}. Fix: send the raw 8-bit pixels, or send "
            "float pixels in the factors' value range to another signature."
        )
    return images.astype(np.uint8)


def format_outputs(outputs, layout):
    """TF Serving's JSON answer for `{name: array [N, ...]}` outputs."""
    outputs = {k: np.asarray(v) for k, v in sorted(outputs.items())}
    if layout == "columnar":
        return {"outputs": {k: v.tolist() for k, v in outputs.items()}}
    num = len(next(iter(outputs.values())))
    columns = {k: v.tolist() for k, v in outputs.items()}
    return {
        "predictions": [
            {k: column[i] for k, column in columns.items()} for i in range(num)
        ]
    }


def model_status(version, state, error_message=""):
    """TF Serving's `GET /v1/models/<name>` answer for one version."""
    return {
        "model_version_status": [
            {
                "version": str(version),
                "state": state,
                "status": {
                    "error_code": "OK" if not error_message else "UNKNOWN",
                    "error_message": error_message,
                },
            }
        ]
    }


__all__ = [
    "MAX_BATCH_SIZE",
    "RequestError",
    "check_signature_name",
    "format_outputs",
    "model_status",
    "parse_body",
    "parse_images",
]
