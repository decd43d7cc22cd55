"""`kfactor serve`: an export under KServe's ModelServer, TF Serving's REST API.

KServe's V1 protocol is TF Serving's REST API; its `ModelServer` (FastAPI
and uvicorn) gives the routes, the health endpoints and the graceful
shutdown. kfactor adds the model (`ExportModel`: a SavedModel written by
`kfactor export`, one signature per task), TF Serving's JSON answers
(`kfactor.serving.protocol`) and two routes kserve answers in its own way:

- `POST /v1/models/<name>:predict`: the body reaches the model as bytes
  (kserve's JSON decoder refuses the `NaN`/`Infinity` tokens TF Serving's
  parser accepts, and names no fix), so that every bad request gets
  `{"error": ...}`, HTTP 400, with the fix in its message;
- `GET /v1/models/<name>`: TF Serving's `model_version_status` (kserve says
  `{"name", "ready"}`).

The server listens before the SavedModel is loaded: until it is, predict
answers 503 ("Model with name <name> is not ready.", kserve's check) and
the status says `LOADING`. On SIGTERM or
SIGINT it stops accepting connections, finishes the requests in flight
(at most `GRACE_PERIOD_S`) and exits.

The `[serve]` extra installs kserve (`pip install -e '.[serve]'`).
"""

import asyncio
import logging
import os
import signal
import sys
import threading

from kfactor.factors.export import INPUT_NAME
from kfactor.factors.export import SERVING_DEFAULT
from kfactor.factors.manifest import DEFAULT_VALUE_RANGE
from kfactor.serving import protocol

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

#: TF Serving's REST port.
DEFAULT_PORT = 8501
DEFAULT_MODEL_NAME = "kfactor"
#: Seconds a stopping server gives the requests in flight.
GRACE_PERIOD_S = 10
SERVE_INSTALL = "pip install -e '.[serve]'"
SAVED_MODEL_FILE = "saved_model.pb"
#: The content type predict bodies are given, one kserve does not decode
#: (it decodes JSON and application/octet-stream with orjson).
BODY_AS_BYTES = b"application/vnd.kfactor.predict"


def import_kserve():
    """The kserve module, or an ImportError naming the extra to install.

    Imported here, not at the top: kserve is an optional extra, and its
    import parses `sys.argv` with its own flags (so it is imported with an
    empty command line).
    """
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        import kserve
        import kserve.errors  # noqa: F401
        import kserve.model_server  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"kfactor serve needs kserve ({err}). Fix: {SERVE_INSTALL}."
        ) from err
    finally:
        sys.argv = argv
    return kserve


def find_version(export_dir):
    """`(version, path)` of the SavedModel `export_dir` holds.

    `export_dir` is what `kfactor export --out` names: its highest numeric
    subfolder holding `saved_model.pb` is served, as TF Serving does. A
    version folder itself is served as it is.
    """
    export_dir = os.path.abspath(os.fspath(export_dir))
    if os.path.isfile(os.path.join(export_dir, SAVED_MODEL_FILE)):
        name = os.path.basename(export_dir)
        return (int(name) if name.isdigit() else 1), export_dir
    versions = []
    if os.path.isdir(export_dir):
        versions = [
            int(name)
            for name in os.listdir(export_dir)
            if name.isdigit()
            and os.path.isfile(os.path.join(export_dir, name, SAVED_MODEL_FILE))
        ]
    if not versions:
        raise FileNotFoundError(
            f"Expected a TF Serving export: {export_dir}/<version>/"
            f"{SAVED_MODEL_FILE}. Received: no such file under {export_dir}."
            " Fix: kfactor export SOURCES --out=EXPORT_DIR, then kfactor "
            "serve EXPORT_DIR."
        )
    version = max(versions)
    return version, os.path.join(export_dir, str(version))


def input_shape(signatures):
    """`(H, W, C)` of the export's `images` input."""
    spec = signatures[SERVING_DEFAULT].structured_input_signature[1]
    return tuple(int(d) for d in spec[INPUT_NAME].shape[1:])


def input_dtype(signature):
    """The dtype of a signature's `images` input (`serving_uint8`'s is
    uint8, the others' float32)."""
    return signature.structured_input_signature[1][INPUT_NAME].dtype


class _PredictBodyAsBytes:
    """ASGI middleware: predict bodies reach the model undecoded."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].endswith(":predict")
        ):
            headers = [h for h in scope["headers"] if h[0] != b"content-type"]
            headers.append((b"content-type", BODY_AS_BYTES))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def make_model(kserve, name, path, version, max_batch_size, value_range):
    """A `kserve.Model` answering TF Serving's predict for an export."""

    class ExportModel(kserve.Model):
        """The SavedModel at `path`, served as `name`, version `version`."""

        def __init__(self):
            super().__init__(name)
            self.path = path
            self.version = version
            self.state = "LOADING"
            self.error_message = ""
            self.signatures = None

        def load(self):
            loaded = tf.saved_model.load(self.path)
            signatures = dict(loaded.signatures)
            self.image_shape = input_shape(signatures)
            for signature in signatures.values():  # traced before serving
                zeros = tf.zeros((1, *self.image_shape), input_dtype(signature))
                signature(**{INPUT_NAME: zeros})
            self._loaded = loaded  # holds the signatures' variables
            self.signatures = signatures
            self.state = "AVAILABLE"
            self.ready = True
            return self.ready

        def answer(self, body):
            """TF Serving's JSON answer to a predict body."""
            try:
                request = protocol.parse_body(body)
                signature = protocol.check_signature_name(
                    request, self.signatures
                )
                dtype = input_dtype(self.signatures[signature])
                images, layout = protocol.parse_images(
                    request,
                    self.image_shape,
                    value_range,
                    max_batch_size,
                    dtype=dtype.name,
                )
            except protocol.RequestError as err:
                raise kserve.errors.InvalidInput(str(err)) from err
            outputs = self.signatures[signature](
                **{INPUT_NAME: tf.constant(images, dtype)}
            )
            outputs = {k: np.asarray(v) for k, v in outputs.items()}
            return protocol.format_outputs(outputs, layout)

        async def predict(self, payload, headers=None):
            if not self.ready:
                raise kserve.errors.ModelNotReady(self.name, "Loading.")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self.answer, payload)

    return ExportModel()


def _status_route(app, model):
    """TF Serving's `GET /v1/models/<name>` ahead of kserve's own."""
    from fastapi.responses import JSONResponse  # kserve's, from the extra

    async def status(model_name: str):
        if model_name != model.name:
            return JSONResponse(
                status_code=404,
                content={
                    "error": f"Servable not found for request: Latest("
                    f"{model_name}). This server serves {model.name!r}: "
                    f"GET /v1/models/{model.name}."
                },
            )
        return protocol.model_status(
            model.version, model.state, model.error_message
        )

    app.add_api_route("/v1/models/{model_name}", status, methods=["GET"])


def _load_or_stop(model):
    try:
        model.load()
    except Exception as err:  # a broken export: say so and exit
        model.state = "END"
        model.error_message = f"{type(err).__name__}: {err}"
        logger.error("Could not load %s: %s", model.path, model.error_message)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    logger.info(
        "Serving %s version %d as %r: signatures %s",
        model.path,
        model.version,
        model.name,
        sorted(model.signatures),
    )


def serve(
    export_dir,
    port=DEFAULT_PORT,
    model_name=DEFAULT_MODEL_NAME,
    max_batch_size=protocol.MAX_BATCH_SIZE,
    value_range=DEFAULT_VALUE_RANGE,
):
    """Serves a `kfactor export` folder over TF Serving's REST API.

    Blocks until SIGTERM or SIGINT. Routes: `POST /v1/models/<name>:predict`,
    `GET /v1/models/<name>` (status), `GET /v2/health/live`,
    `GET /v2/health/ready`, `GET /v2/models/<name>/ready`, `GET /metrics`.

    Args:
        export_dir: `kfactor export --out` (`<dir>/<version>/saved_model.pb`)
            or one version folder.
        port: the HTTP port (TF Serving's REST port by default).
        model_name: the `<name>` of the routes.
        max_batch_size: the most images one request may hold.
        value_range: the pixel range requests must respect.

    Example:

    >>> kfactor.serving.serve("kfactor_runs/demo/serving")  # doctest: +SKIP
    """
    version, path = find_version(export_dir)
    if max_batch_size < 1:
        raise ValueError(
            f"Expected max_batch_size >= 1. Received: {max_batch_size}."
        )
    kserve = import_kserve()
    model = make_model(
        kserve, model_name, path, version, max_batch_size, value_range
    )
    server = kserve.ModelServer(
        http_port=port,
        enable_grpc=False,
        workers=1,
        grace_period=GRACE_PERIOD_S,
        enable_latency_logging=False,
    )
    server.register_model(model)
    app = kserve.model_server.app
    _status_route(app, model)
    app.add_middleware(_PredictBodyAsBytes)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    threading.Thread(target=_load_or_stop, args=(model,), daemon=True).start()
    logger.info(
        "Listening on port %d: POST /v1/models/%s:predict", port, model_name
    )
    server.start([])  # the model is registered, loading: start([]) waits
    # for no model to be ready, so requests get 503 until it is.


__all__ = [
    "DEFAULT_MODEL_NAME",
    "DEFAULT_PORT",
    "find_version",
    "import_kserve",
    "make_model",
    "serve",
]
