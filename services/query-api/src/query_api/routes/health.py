"""``/livez`` (the process answers), ``/readyz`` (every configured backend answers; 503 and the
failing checks otherwise) and ``/metrics`` (Prometheus). No API key: a kubelet and Prometheus
call them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from read_models import ReadModelError

from query_api.backends import Backends, BackendTimeout
from query_api.responses import json_response
from query_api.routes._common import backends

router = APIRouter(tags=["health"])
Backend = Annotated[Backends, Depends(backends)]


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


async def _check(found: Backends, name: str, ping: Any) -> str:
    if ping is None:
        return "not configured"
    try:
        await found.call(name, ping)
    except (ReadModelError, BackendTimeout) as exc:
        return f"failing: {exc}"
    return "ok"


@router.get("/readyz")
async def readyz(found: Backend) -> Response:
    """Each configured backend pinged (in parallel, each under the backend timeout)."""
    pings = found.ping_functions()
    results = await asyncio.gather(*(_check(found, n, p) for n, p in pings.items()))
    checks = dict(zip(pings, results, strict=True))
    ready = all(r in ("ok", "not configured") for r in results)
    return json_response({"status": "ready" if ready else "not ready", "checks": checks},
                         200 if ready else 503)  # fmt: skip


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
