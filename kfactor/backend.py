"""Selects Keras's TensorFlow backend before Keras is first imported.

kfactor's training step, SavedModel export and TFP estimators are TensorFlow
code, so it needs Keras 3 running on the TensorFlow backend.
"""

import os
import sys

REQUIRED_BACKEND = "tensorflow"


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
