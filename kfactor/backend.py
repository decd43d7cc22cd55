"""Selects Keras's TensorFlow backend before Keras is first imported.

kfactor's training step, SavedModel export and TFP estimators are TensorFlow
code, so it needs Keras 3 running on the TensorFlow backend.

It also turns on TensorFlow's oneDNN CPU kernels unless the user decided
(`TF_ENABLE_ONEDNN_OPTS` set): TF enables them by default only on CPUs with
AVX512-VNNI/AMX, and without them the factorization step on a 2-core AVX2
machine runs at 52 instead of 146 images/s (full width, batch 128; see
`benchmarks/`). The variable is read when TensorFlow is first imported, so
it only takes effect when kfactor is imported first.
"""

import logging
import os
import sys

REQUIRED_BACKEND = "tensorflow"
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn_kernels():
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` if unset and TF is not imported yet.

    TensorFlow reads the variable once, at import; if it was imported
    before kfactor and the user did not choose, this logs a warning with
    the fix instead.

    Returns:
        Whether oneDNN was requested for this process (by us or the user).
    """
    if ONEDNN_VARIABLE not in os.environ:
        if "tensorflow" in sys.modules:
            logging.getLogger("kfactor").warning(
                "TensorFlow was imported before kfactor, so its oneDNN CPU "
                "kernels may stay off (the factorization step ran 2.8x "
                "slower without them on an AVX2 CPU). Fix: import kfactor "
                "first, or set TF_ENABLE_ONEDNN_OPTS=1 (or =0 to silence "
                "this) before starting Python."
            )
        else:
            os.environ[ONEDNN_VARIABLE] = "1"
    return os.environ.get(ONEDNN_VARIABLE, "") in ("1", "true", "True")


def ensure_tensorflow_backend():
    """Sets `KERAS_BACKEND=tensorflow`, or raises if Keras runs another one.

    Raises:
        RuntimeError: if Keras was already imported with another backend, or
            `KERAS_BACKEND` names another backend.
    """
    requested = os.environ.setdefault("KERAS_BACKEND", REQUIRED_BACKEND)
    if requested != REQUIRED_BACKEND:
        raise RuntimeError(
            "kfactor needs Keras's TensorFlow backend. Received: "
            f"KERAS_BACKEND={requested!r}. Fix: unset KERAS_BACKEND or set "
            "it to 'tensorflow' before importing kfactor."
        )
    if "keras" in sys.modules:
        import keras

        active = keras.backend.backend()
        if active != REQUIRED_BACKEND:
            raise RuntimeError(
                "kfactor needs Keras's TensorFlow backend, but Keras was "
                f"already imported with backend={active!r}. Fix: import "
                "kfactor before keras, or set KERAS_BACKEND=tensorflow."
            )
