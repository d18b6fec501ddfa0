"""The lake's scheduled work, run by the flusher beside its consumer loop: the report tables
materialized (``_reports``) and the tables maintained (``_maintain``: compaction, expiry).

One thread per process, with a catalog connection of its own. It runs only while ``leader()``
says so (the sink: this process holds partition 0 of the orders topic, which one member of the
group does at a time); a second process doing the same work meanwhile (a member that missed a
rebalance) is harmless: both jobs commit only on the snapshot they checked and never move a
table backwards. A failure is logged and tried again at the next turn: neither job holds back
the consumer, and neither is needed for the changes tables to be exact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from pyiceberg.catalog import Catalog

from analytics_flusher.store._iceberg._catalog import CatalogConfig, open_catalog
from analytics_flusher.store._iceberg._maintain import maintain
from analytics_flusher.store._iceberg._reports import materialize_reports

__all__ = ["LakeJobs"]

_log = structlog.get_logger("analytics_flusher")
_SERVICE = "analytics-flusher"
# How often the thread wakes up to see whether a job is due (and whether it must stop).
_TICK_S = 1.0


class LakeJobs:
    """Reports every ``reports_interval_s`` and maintenance every ``maintain_interval_s``
    (0: never), while ``leader()``; ``start`` and ``stop``."""

    def __init__(
        self,
        config: CatalogConfig,
        leader: Callable[[], bool],
        *,
        window_ms: int,
        top_n: int,
        reports_interval_s: float,
        maintain_interval_s: float,
        snapshot_retention_s: float = 3600.0,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.leader = leader
        self.window_ms = window_ms
        self.top_n = top_n
        self.reports_interval_s = reports_interval_s
        self.maintain_interval_s = maintain_interval_s
        self.snapshot_retention = timedelta(seconds=snapshot_retention_s)
        self._clock = clock
        # The first runs one interval after the start: a process that restarts (a deploy, a
        # crash loop) does not recompute or maintain each time it comes up.
        self._due = {
            "reports": clock() + reports_interval_s,
            "maintain": clock() + maintain_interval_s,
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._catalog: Catalog | None = None
        registry = registry or CollectorRegistry()
        self.seconds = Histogram(
            "lake_iceberg_job_seconds",
            "Time of a run of the lake's scheduled jobs (reports, maintain).",
            ["service", "job"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=registry,
        )
        self.failures = Counter(
            "lake_iceberg_job_failures_total",
            "Runs of the lake's scheduled jobs that failed (tried again at the next turn).",
            ["service", "job"],
            registry=registry,
        )

    def start(self) -> LakeJobs:
        self._thread = threading.Thread(target=self._loop, name="lake-jobs", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_due(self) -> list[str]:
        """Run the jobs that are due, if this process leads; returns the jobs run."""
        if not self.leader():
            return []
        now = self._clock()
        ran = []
        for job, interval in (
            ("reports", self.reports_interval_s),
            ("maintain", self.maintain_interval_s),
        ):
            if interval <= 0 or now < self._due[job]:
                continue
            self._due[job] = now + interval
            started = time.perf_counter()
            try:
                self._run(job)
            except Exception:  # the thread must survive anything; the job runs again later
                self.failures.labels(_SERVICE, job).inc()
                _log.exception("lake job failed; trying again at its next turn", job=job)
                self._catalog = None  # a new connection next time
            finally:
                self.seconds.labels(_SERVICE, job).observe(time.perf_counter() - started)
            ran.append(job)
        return ran

    def _run(self, job: str) -> None:
        if self._catalog is None:
            self._catalog = open_catalog(self.config)
        catalog = self._catalog
        assert catalog is not None
        if job == "reports":
            materialize_reports(
                catalog, self.config.namespace, window_ms=self.window_ms, top_n=self.top_n
            )
        else:
            maintain(catalog, self.config.namespace, older_than=self.snapshot_retention)

    def _loop(self) -> None:
        while not self._stop.wait(_TICK_S):
            try:
                self.run_due()
            except Exception:  # the thread must survive anything (run_due logs a job's own)
                _log.exception("lake jobs turn failed; trying again")
