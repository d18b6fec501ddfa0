"""Pipeline health for the dashboard: ``GET /v1/pipeline`` from the services' own ``/metrics``.

Each consumer service serves Prometheus ``/metrics`` and ``/readyz`` on its health port
(``PIPELINE_METRICS_URLS`` names them). A request scrapes every service at once, unless the last
round is younger than ``PIPELINE_SCRAPE_MIN_INTERVAL_SECONDS`` (many open dashboards cost the
services one scrape a second, not one each), keeps the rounds of the last window and answers each
service's figures (``_pipeline_health``). Every request has a timeout: a service that does not
answer, or not with metrics, is reported down, and the endpoint still answers 200.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import httpx
from consumer_runtime.metrics_text import parse_runtime_metrics
from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from query_api._pipeline_health import Scrape, ServiceHealth, service_health

__all__ = ["PipelineHealth", "PipelineScraper", "PipelineSettings", "pipeline_router"]


class PipelineSettings(BaseSettings):
    """Where the services' metrics are and how the panel reads them."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    #: ``name=url,name=url``: each service's ``/metrics`` URL (its ``/readyz`` is beside it)
    pipeline_metrics_urls: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # A scrape of a healthy service takes milliseconds; 2 s leaves room for a busy one and
    # keeps a dashboard refresh (every few seconds) from waiting on a hung one.
    pipeline_scrape_timeout_seconds: float = 2.0
    # The dashboard refreshes every 3 s; a second between rounds serves several viewers at once.
    pipeline_scrape_min_interval_seconds: float = 1.0
    # Throughput and p99 are over the last 30 s: long enough to smooth batching, short enough
    # that the panel shows how the service does now.
    pipeline_window_seconds: float = 30.0

    @field_validator("pipeline_metrics_urls", mode="before")
    @classmethod
    def _parse_pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, url = item.partition("=")
            if not sep or not name.strip() or not url.strip().startswith(("http://", "https://")):
                raise ValueError(
                    f"PIPELINE_METRICS_URLS: {item!r} is not name=http://host:port/metrics"
                )
            pairs[name.strip()] = url.strip()
        return pairs


class PipelineHealth(BaseModel):
    """``GET /v1/pipeline``: every configured service, in the order of the setting."""

    scraped_at: datetime
    window_seconds: float
    services: list[ServiceHealth]


def _readyz_url(metrics_url: str) -> str:
    parts = urlsplit(metrics_url)
    return urlunsplit((parts.scheme, parts.netloc, "/readyz", "", ""))


class PipelineScraper:
    """The last scrapes of every service; one round at a time, shared by every request."""

    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()
        #: the last round: when (monotonic, and as a time of day)
        self._last_round: tuple[float, datetime] | None = None
        self._scrapes: dict[str, deque[Scrape]] = {
            name: deque() for name in settings.pipeline_metrics_urls
        }

    async def health(self) -> PipelineHealth:
        async with self._lock:
            now = time.monotonic()
            last = self._last_round
            if last is None or now - last[0] >= self.settings.pipeline_scrape_min_interval_seconds:
                await self._scrape_all(now)
            window = self.settings.pipeline_window_seconds
            services = [
                service_health(name, url, list(self._scrapes[name]), window)
                for name, url in self.settings.pipeline_metrics_urls.items()
            ]
            scraped_at = self._last_round[1] if self._last_round else datetime.now(UTC)
            return PipelineHealth(scraped_at=scraped_at, window_seconds=window, services=services)

    async def _scrape_all(self, now: float) -> None:
        urls = self.settings.pipeline_metrics_urls
        timeout = httpx.Timeout(self.settings.pipeline_scrape_timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            results = await asyncio.gather(
                *(self._scrape(client, url, now) for url in urls.values())
            )
        keep_after = now - self.settings.pipeline_window_seconds
        for name, scrape in zip(urls, results, strict=True):
            history = self._scrapes[name]
            history.append(scrape)
            # One scrape older than the window stays: a service quiet for the whole window
            # keeps the p99 of its last writes from it (``_pipeline_health._window_p99``).
            while len(history) > 2 and history[1].at <= keep_after:
                history.popleft()
        self._last_round = (now, datetime.now(UTC))

    @staticmethod
    async def _scrape(client: httpx.AsyncClient, metrics_url: str, now: float) -> Scrape:
        metrics, ready = await asyncio.gather(
            client.get(metrics_url), client.get(_readyz_url(metrics_url)), return_exceptions=True
        )
        is_ready = isinstance(ready, httpx.Response) and ready.status_code == 200
        if isinstance(metrics, BaseException):
            reason = "timed out" if isinstance(metrics, httpx.TimeoutException) else "no answer"
            return Scrape(now, None, is_ready, f"{reason}: {type(metrics).__name__}")
        if metrics.status_code != 200:
            return Scrape(now, None, is_ready, f"/metrics answered HTTP {metrics.status_code}")
        try:
            figures = parse_runtime_metrics(metrics.text)
        except ValueError as exc:
            return Scrape(now, None, is_ready, f"/metrics is not a Prometheus exposition: {exc}")
        return Scrape(now, figures, is_ready)


def pipeline_router(settings: PipelineSettings | None = None) -> APIRouter:
    """``GET /pipeline`` (mounted under ``/v1`` with the read scope), scraping the services of
    ``settings`` (default: from the environment)."""
    scraper = PipelineScraper(settings if settings is not None else PipelineSettings())
    router = APIRouter(tags=["pipeline"])

    @router.get("/pipeline", response_model=PipelineHealth, summary="Pipeline health")
    async def pipeline() -> PipelineHealth:
        """Per service: ready, lag, throughput, p99 end-to-end latency, dead letters."""
        return await scraper.health()

    return router
