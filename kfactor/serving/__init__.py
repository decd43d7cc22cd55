"""Serving an export over TF Serving's REST API (`kfactor serve`)."""

from kfactor.serving import protocol
from kfactor.serving.server import serve

__all__ = ["protocol", "serve"]
