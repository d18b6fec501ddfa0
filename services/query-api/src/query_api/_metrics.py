"""Prometheus metrics of the API (``/metrics``) and the ASGI middleware that records them.

- ``query_api_requests_total{route,method,status}``: requests answered;
- ``query_api_request_seconds{route,method}``: their latency (histogram);
- ``query_api_backend_seconds{backend,outcome}``: each backend call's latency (``ok``,
  ``error``, ``timeout``), recorded by ``backends.Backends.call``.

``route`` is the matched route's template (``/v1/stats/customers/{customer_id}``), never the
raw path, so the label's values stay few; a request no route matched is ``unmatched``. The
middleware is plain ASGI (no per-request task or body buffering).
"""

from __future__ import annotations

import time
from typing import Any, Final

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BACKEND_SECONDS",
    "REQUESTS",
    "REQUEST_SECONDS",
    "MetricsMiddleware",
    "route_template",
]

# Buckets from 1 ms (a cached statistics read) to 10 s (past any backend timeout).
_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("query_api_requests_total", "Requests answered", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "query_api_request_seconds", "Request latency", ["route", "method"], buckets=_BUCKETS
)
BACKEND_SECONDS = Histogram(
    "query_api_backend_seconds",
    "Backend call latency",
    ["backend", "outcome"],
    buckets=_BUCKETS,
)


def route_template(scope: Scope) -> str:
    """The matched route's template with the prefix it was included under: FastAPI keeps an
    included router's prefix out of ``route.path`` (``/stats/customers/{customer_id}`` under
    ``/v1``), so the prefix is the part of the path before what the route itself matched."""
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    if not template:
        return "unmatched"
    path: str = scope.get("path", "")
    try:
        own = route.path_format.format(**scope.get("path_params", {}))
    except (AttributeError, KeyError, IndexError, ValueError):
        return str(template)
    prefix = path[: len(path) - len(own)] if own and path.endswith(own) else ""
    return prefix + str(template)


class MetricsMiddleware:
    """Counts and times every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            template = route_template(scope)
            method = scope.get("method", "GET")
            REQUESTS.labels(template, method, str(status)).inc()
            REQUEST_SECONDS.labels(template, method).observe(time.perf_counter() - start)
