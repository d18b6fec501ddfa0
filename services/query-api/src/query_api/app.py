"""The application factory: ``create_app(settings)`` builds the FastAPI app with its backends,
keys, error handlers, metrics middleware and routers (``/v1/...``, health at the root).

To extend it (a dashboard, say), build the app and add to it before serving::

    app = create_app(settings)
    app.include_router(dashboard_router)                    # its routes, with their scopes
    app.mount("/ui", StaticFiles(directory=..., html=True))   # static files

Routes added this way get the problem handlers and the metrics; protect them with
``Depends(query_api.require("read"))``. ``app.state.backends`` (``Backends``) and
``app.state.keys`` (``KeyStore``) are there for them to use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from query_api._metrics import MetricsMiddleware
from query_api.auth import KeyStore
from query_api.backends import Backends
from query_api.dashboard import install_dashboard
from query_api.errors import install_handlers
from query_api.routes import admin, events, health, lake, products, stats
from query_api.settings import Settings

__all__ = ["API_VERSION", "create_app"]

API_VERSION = "v1"

_log = structlog.get_logger("query_api")


def create_app(
    settings: Settings,
    *,
    backends: Backends | None = None,
    keys: KeyStore | None = None,
) -> FastAPI:
    """The API over ``settings``' backends (or ``backends``, built by the caller) and keys
    (``API_KEYS_FILE`` and ``API_KEYS``, or ``keys``)."""
    found = backends or Backends.from_settings(settings)
    store = keys or KeyStore(
        settings.api_keys_file,
        settings.api_keys.get_secret_value() if settings.api_keys else None,
    )

    if not len(store.ring):
        _log.warning(
            "no API keys: every /v1 route answers 401; set API_KEYS_FILE or API_KEYS",
            path=str(settings.api_keys_file),
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        found.close()

    app = FastAPI(
        title="CDC platform query API",
        version="1.0.0",
        description=(
            "Read-only access to the read models: statistics, product search, availability, "
            "the event store and the data lake's reports. Every route under /v1 needs an API "
            "key (X-API-Key or Authorization: Bearer); errors are RFC 9457 problems."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.backends = found
    app.state.keys = store
    install_handlers(app)
    app.add_middleware(MetricsMiddleware)
    for router in (stats.router, products.router, events.router, lake.router, admin.router):
        app.include_router(router, prefix=f"/{API_VERSION}")
    app.include_router(health.router)
    install_dashboard(app)  # /dashboard and /v1/pipeline (PIPELINE_* settings)
    return app
