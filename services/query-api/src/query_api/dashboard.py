"""The live web dashboard: ``GET /dashboard`` and its assets, and ``GET /v1/pipeline`` behind it.

The page is static (``dashboard_assets/``: HTML, CSS and JavaScript shipped as package data; no
build step, no CDN: it works offline) and holds no data, so it is served without a key. Its
script reads the key from the address's fragment (``/dashboard#key=...``, never sent to a
server, so never in a log) and calls the ``/v1`` endpoints with it: the lake's reports, the
low-stock products and the pipeline's health (``query_api.pipeline``). The Content-Security-
Policy lets it load nothing but this API's own files.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.responses import Response

from query_api.auth import require
from query_api.pipeline import PipelineSettings, pipeline_router

__all__ = ["dashboard_router", "install_dashboard"]

#: Asset name -> its media type; nothing else is served from the folder.
_ASSETS: Final = {
    "dashboard.css": "text/css; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # The files change only with a release; revalidating keeps an upgraded API's page current.
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> bytes:
    return files("query_api").joinpath("dashboard_assets", name).read_bytes()


def dashboard_router() -> APIRouter:
    """``GET /dashboard`` (the page) and ``GET /dashboard/assets/{name}`` (its files)."""
    router = APIRouter(tags=["dashboard"], include_in_schema=False)
    page = _asset("dashboard.html")
    assets = {name: (_asset(name), media) for name, media in _ASSETS.items()}

    @router.get("/dashboard")
    async def dashboard() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_HEADERS)

    @router.get("/dashboard/assets/{name}")
    async def asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            raise HTTPException(404, f"no dashboard asset {name!r}")
        body, media = found
        return Response(body, media_type=media, headers=_HEADERS)

    return router


def install_dashboard(app: FastAPI, settings: PipelineSettings | None = None) -> None:
    """Add the dashboard's routes to ``app``: the page, and ``/v1/pipeline`` with the read
    scope, scraping the services of ``settings`` (default: ``PIPELINE_*`` from the
    environment)."""
    app.include_router(
        pipeline_router(settings), prefix="/v1", dependencies=[Depends(require("read"))]
    )
    app.include_router(dashboard_router())
