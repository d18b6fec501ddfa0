"""The read models behind the API, each built once from the settings, and the one way to call
them: ``Backends.call`` runs a blocking read on the API's thread pool (the event loop never
waits on a socket), under ``BACKEND_TIMEOUT_S``, and times it per backend
(``query_api_backend_seconds``).

PostgreSQL readers keep a pool of ``DB_POOL_SIZE`` connections (plus ``DB_MAX_OVERFLOW``) with
the statement timeout set to the same budget, so a query the API gave up on is also stopped by
the server. The DynamoDB and Iceberg clients are thread-safe and shared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from consumer_runtime import RetryableError
from read_models import UnavailableError
from read_models.events import EventStoreReader
from read_models.lake import LakeReports
from read_models.search import ProductSearch
from read_models.stats import InventoryReader, StatsReader

from query_api._metrics import BACKEND_SECONDS
from query_api.settings import Settings

__all__ = ["BACKENDS", "BackendTimeout", "Backends", "NotConfigured"]

T = TypeVar("T")

#: The backends by name, as ``/readyz`` and the metrics label them.
BACKENDS: Final = ("stats", "inventory", "events", "search", "lake")


class NotConfigured(UnavailableError):
    """A backend whose settings are not given: its endpoints answer 503."""


class BackendTimeout(Exception):
    """A backend call past ``BACKEND_TIMEOUT_S`` (a 504)."""


@dataclass
class Backends:
    """The readers (None: not configured), the thread pool and the timeout."""

    timeout_s: float
    threads: int = 32
    stats: StatsReader | None = None
    inventory: InventoryReader | None = None
    events: EventStoreReader | None = None
    search: ProductSearch | None = None
    lake: LakeReports | None = None
    executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="backend")

    @classmethod
    def from_settings(cls, settings: Settings) -> Backends:
        timeout_ms = int(settings.backend_timeout_s * 1000)
        pool = {
            "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow,
            "statement_timeout_ms": max(timeout_ms, 1000),
            "application_name": "query-api",
        }
        aws = {"region": settings.aws_region, "endpoint_url": settings.aws_endpoint_url}
        catalog = settings.catalog_config()
        return cls(
            timeout_s=settings.backend_timeout_s,
            threads=settings.backend_threads,
            stats=(
                # No pre-ping: the statistics are read per request, a round trip each counts; a
                # connection the server dropped fails one request (503) and leaves the pool.
                StatsReader(settings.database_url.get_secret_value(), pre_ping=False, **pool)  # type: ignore[arg-type]
                if settings.database_url
                else None
            ),
            events=(
                EventStoreReader(settings.event_store_url.get_secret_value(), **pool)  # type: ignore[arg-type]
                if settings.event_store_url
                else None
            ),
            inventory=(
                InventoryReader.connect(settings.inventory_table, **aws)
                if settings.inventory_table
                else None
            ),
            search=(
                ProductSearch.connect(settings.dynamodb_table, **aws)
                if settings.dynamodb_table
                else None
            ),
            lake=None if catalog is None else LakeReports(catalog),
        )

    def require(self, name: str) -> Any:
        """The backend ``name``; ``NotConfigured`` if it has no settings."""
        backend = getattr(self, name)
        if backend is None:
            raise NotConfigured(f"the {name} backend is not configured on this server")
        return backend

    async def call(self, backend: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the thread pool, within the timeout; an outage the
        readers report as the runtime's ``RetryableError`` becomes ``UnavailableError``."""
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        outcome = "ok"
        try:
            future = loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            outcome = "timeout"
            raise BackendTimeout(
                f"the {backend} backend did not answer within {self.timeout_s:g} s"
            ) from None
        except RetryableError as exc:
            outcome = "error"
            raise UnavailableError(f"the {backend} backend is unavailable: {exc}") from exc
        except UnavailableError:
            outcome = "error"
            raise
        finally:
            BACKEND_SECONDS.labels(backend, outcome).observe(time.perf_counter() - start)

    def ping_functions(self) -> dict[str, Callable[[], object] | None]:
        """Per backend, the check ``/readyz`` runs (None: not configured)."""

        def search_ping() -> None:
            assert self.search is not None
            if not self.search.table.reachable():
                raise UnavailableError("the search index table does not answer")

        return {
            "stats": None if self.stats is None else self.stats.ping,
            "inventory": None if self.inventory is None else self.inventory.ping,
            "events": None if self.events is None else self.events.ping,
            "search": None if self.search is None else search_ping,
            "lake": None if self.lake is None else self.lake.ping,
        }

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        for reader in (self.stats, self.events):
            if reader is not None:
                reader.close()
