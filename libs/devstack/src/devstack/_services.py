"""The four consumer services as child processes of ``make up``, as they would run in pods.

Each gets the stack's connection settings through the same environment variables it reads in
Kubernetes, its own health/metrics port, and is stopped with SIGTERM (final flush and commit).
The live view scrapes each ``/metrics`` (read with ``consumer_runtime.metrics_text``) and
``/readyz``.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from consumer_runtime.metrics_text import bucket_quantile, parse_runtime_metrics, recent_buckets

from devstack._proc import ManagedProcess, free_port

# The runtime's grace period is 25 s; 35 s mirrors terminationGracePeriodSeconds.
_STOP_TIMEOUT_S = 35.0
DATA_LAKE_BUCKET = "cdc-platform-data-lake-local"
SEARCH_TABLE = "product-search-index"
INVENTORY_TABLE = "inventory-realtime"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)
    # Its own database on the sink server, as in production: services never share tables.
    database: str | None = None
    # The database of its Iceberg catalog on the sink server (``LAKE_CATALOG_URI``).
    catalog_database: str | None = None

    @property
    def available(self) -> bool:
        """Installed with an entry point (``python -m <module>``)."""
        try:
            return importlib.util.find_spec(f"{self.module}.__main__") is not None
        except ModuleNotFoundError:
            return False


# Times scaled down for runs of minutes. The clock-skew bounds (MAX_CLOCK_SKEW_SECONDS) with
# them: the lake's equal to its grace (a change further ahead of the clock moves no watermark);
# the statistics' short enough that
# the activity as-of a far-future event pushed ahead comes back to the clock within a chaos
# fault (the chaos ``clock_skew`` fault waits for that; its budget is ChaosOptions.clock_heal_s).
STATS_MAX_CLOCK_SKEW_S = 20
LAKE_GRACE_S = 10

SERVICES = (
    ServiceSpec("event-store-writer", "event_store_writer", database="event_store"),
    ServiceSpec(
        "stats-aggregator",
        "stats_aggregator",
        {"MAX_CLOCK_SKEW_SECONDS": str(STATS_MAX_CLOCK_SKEW_S)},
        database="stats",
    ),
    ServiceSpec("search-indexer", "search_indexer", {"DYNAMODB_TABLE": SEARCH_TABLE}),
    ServiceSpec(
        "analytics-flusher",
        "analytics_flusher",
        {
            "S3_BUCKET": DATA_LAKE_BUCKET,
            "WINDOW_SECONDS": "60",
            "GRACE_SECONDS": str(LAKE_GRACE_S),
            "MAX_CLOCK_SKEW_SECONDS": str(LAKE_GRACE_S),
            "IDLE_FLUSH_SECONDS": "10",
            # The Iceberg tables: a run of minutes sees a commit every few seconds, the report
            # tables recomputed every 2 minutes (each run scans the changes tables: seconds on
            # the emulator; verification recomputes them too) and the tables maintained every
            # 3 minutes. The Parquet export too, so that both lakes are verified (and the
            # chaos run's clock faults read the lake's late report).
            "LAKE_COMMIT_INTERVAL_SECONDS": "5",
            "LAKE_REPORTS_INTERVAL_SECONDS": "120",
            "LAKE_MAINTAIN_INTERVAL_SECONDS": "180",
            "LAKE_SNAPSHOT_RETENTION_SECONDS": "120",
            "LAKE_PARQUET_EXPORT": "true",
        },
        catalog_database="lake_catalog",
    ),
)


@dataclass
class ServiceStatus:
    ready: bool = False
    processed: float = 0.0
    dlq: float = 0.0
    retries: float = 0.0
    lag: float = 0.0
    #: whether the service reported a lag yet (see ``RuntimeFigures.lag_reported``)
    lag_reported: bool = False
    lag_by_topic: dict[str, float] = field(default_factory=dict)
    #: p99 end-to-end latency of what was written since the previous status (the live view's
    #: refresh), not since the start: a slow start-up must not hide how the service does now.
    latency_p99_s: float | None = None


class ServiceProcess:
    def __init__(
        self,
        spec: ServiceSpec,
        base_env: dict[str, str],
        log_dir: Path,
        group_suffix: str = "",
        replica: int = 0,
    ) -> None:
        self.spec = spec
        self.replica = replica
        self.name = spec.name if replica == 0 else f"{spec.name}-{replica}"
        self.health_port = free_port()
        self.group_id = f"{spec.name}-group{group_suffix}"
        env = {
            **base_env,
            "KAFKA_GROUP_ID": self.group_id,
            "HEALTH_PORT": str(self.health_port),
            "LOG_FORMAT": "json",
            **spec.env,
        }
        self.log_path = log_dir / f"{self.name}.log"
        # The latency histogram as last scraped (le -> cumulative count) and the p99 from it.
        self._latency_seen: dict[float, float] = {}
        self._latency_p99: float | None = None
        self.process = ManagedProcess(
            self.name,
            [sys.executable, "-m", spec.module],
            self.log_path,
            env=env,
        )

    def p99_since(self, baseline: dict[float, float] | None = None) -> float | None:
        """p99 end-to-end latency of everything written since ``baseline`` (a copy of
        ``latency_seen`` taken earlier; ``None``: since the process started), as of the last
        status (the upper bound of its histogram bucket)."""
        seen = recent_buckets(baseline or {}, self._latency_seen)
        return bucket_quantile(seen.items(), 0.99)

    @property
    def latency_seen(self) -> dict[float, float]:
        """The latency histogram as last scraped (le -> cumulative count)."""
        return dict(self._latency_seen)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/metrics"

    def start(self) -> ServiceProcess:
        self.process.start()
        return self

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> int | None:
        return self.process.stop(timeout=timeout)

    def request_stop(self) -> None:
        """SIGTERM once: the service finishes its batch, flushes, commits and exits."""
        self.process.signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = _STOP_TIMEOUT_S) -> int | None:
        return self.process.wait_or_kill(timeout)

    def status(self) -> ServiceStatus:
        status = ServiceStatus()
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/readyz", timeout=1
            ) as resp:
                status.ready = resp.status == 200
        except (urllib.error.URLError, OSError):
            status.ready = False
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=1) as resp:  # noqa: S310
                figures = parse_runtime_metrics(resp.read().decode())
        except (urllib.error.URLError, OSError, ValueError):
            return status
        status.processed = figures.processed
        status.dlq = figures.dlq
        status.retries = figures.retries
        status.lag = figures.lag
        status.lag_reported = figures.lag_reported
        status.lag_by_topic = figures.lag_by_topic
        status.latency_p99_s = self._recent_p99(figures.latency_buckets)
        return status

    def _recent_p99(self, buckets: dict[float, float]) -> float | None:
        """p99 of the observations since the previous scrape; the previous figure when there
        were none (a quiet stream), everything when the process restarted (counts fell)."""
        recent = recent_buckets(self._latency_seen, buckets)
        self._latency_seen = buckets
        p99 = bucket_quantile(recent.items(), 0.99)
        if p99 is not None:
            self._latency_p99 = p99
        return self._latency_p99
