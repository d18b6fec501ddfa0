"""The read-only HTTP API over the read models (``python -m query_api``).

``create_app(settings)`` builds the FastAPI app (routers under ``/v1``, health at the root);
``Settings`` reads the environment; ``require(scope)`` is the dependency that protects a route.
"""

from query_api.app import API_VERSION, create_app
from query_api.auth import KeyStore, require
from query_api.backends import Backends
from query_api.settings import Settings

__all__ = ["API_VERSION", "Backends", "KeyStore", "Settings", "create_app", "require"]
