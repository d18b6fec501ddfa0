"""The flusher's own Prometheus metrics, served by the runtime next to its ``cdc_*`` ones, and
the log line of each recorded sweep (which one of them counts).

The sink exposes the registry as ``metrics_registry``; the runtime registers it on its
``/metrics`` (``consumer_runtime``'s sink protocol).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analytics_flusher.domain import Part

SERVICE = "analytics-flusher"

_log = structlog.get_logger("analytics_flusher")


class LakeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.clock_skewed = Counter(
            "lake_clock_skewed_records_total",
            "Changes whose event time (source.ts_ms) was more than MAX_CLOCK_SKEW_SECONDS ahead "
            "of the processing clock: filed under their own window; they do not move the "
            "partition's watermark. By topic.",
            ["service", "topic"],
            registry=self.registry,
        )
        self.sweeps = Counter(
            "lake_sweeps_recorded_total",
            "Sweeps written to the lake: window parts holding the last read of a table in a "
            "Debezium snapshot, whose sweep version deletes the table's rows below it at query "
            "time. A redelivered marker is counted again. By table.",
            ["service", "table"],
            registry=self.registry,
        )

    def count_skewed(self, topic: str, partition: int, n: int, *, bound_ms: int) -> None:
        """Count and log ``n`` changes of one batch ahead of the clock's bound."""
        if not n:
            return
        self.clock_skewed.labels(SERVICE, topic).inc(n)
        _log.warning(
            "changes ahead of the clock; they do not move the watermark",
            topic=topic,
            partition=partition,
            count=n,
            bound_ms=bound_ms,
        )

    def record_sweeps(self, part: Part) -> None:
        """Log and count the sweeps of a part whose objects are all written (durable)."""
        for table, (version, offset) in sorted(part.sweeps.items()):
            self.sweeps.labels(SERVICE, table).inc()
            _log.info(
                "sweep recorded",
                table=table,
                sweep_version=version,
                topic=part.topic,
                partition=part.partition,
                offset=offset,
                window_start=part.window_start,
            )


@dataclass(frozen=True, slots=True)
class Buffered:
    """What one of the sink's buffers holds now: ``parquet_windows`` (the open windows of the
    Parquet export, bounded by ``MAX_OPEN_BYTES``) or ``iceberg`` (changes waiting for the next
    commit of the changes tables, bounded by ``ICEBERG_MAX_ROWS``)."""

    buffer: str
    rows: int
    bytes: int
    windows: int | None = None  # open windows (the Parquet export only)


class HttpCounts(Protocol):
    """The analytics API poster's counts (``_http.HttpPoster``)."""

    sent: int
    rejected: int
    failed: int


class SinkGauges(Collector):
    """The sink's buffers and its HTTP sink's requests, read when ``/metrics`` is scraped:
    ``cdc_sink_open_windows``, ``cdc_sink_buffered_rows``, ``cdc_sink_buffered_bytes`` (by
    buffer), ``cdc_http_sink_requests_total`` (by outcome: accepted, rejected, failed)."""

    def __init__(
        self, buffered: Callable[[], Sequence[Buffered]], http: HttpCounts | None = None
    ) -> None:
        self._buffered = buffered
        self._http = http

    def collect(self) -> Iterable[Metric]:
        labels = ["service", "buffer"]
        windows = GaugeMetricFamily(
            "cdc_sink_open_windows", "Event-time windows open now, by buffer.", labels=labels
        )
        rows = GaugeMetricFamily(
            "cdc_sink_buffered_rows",
            "Rows held in memory and not yet durable, by buffer (parquet_windows: distinct "
            "rows of the open windows; iceberg: changes waiting for the next commit).",
            labels=labels,
        )
        size = GaugeMetricFamily(
            "cdc_sink_buffered_bytes",
            "Bytes held in memory and not yet durable, by buffer (parquet_windows: the "
            "estimate MAX_OPEN_BYTES bounds; iceberg: the Arrow bytes of the buffered changes).",
            labels=labels,
        )
        for b in self._buffered():
            rows.add_metric([SERVICE, b.buffer], float(b.rows))
            size.add_metric([SERVICE, b.buffer], float(b.bytes))
            if b.windows is not None:
                windows.add_metric([SERVICE, b.buffer], float(b.windows))
        yield from (windows, rows, size)
        if self._http is not None:
            requests = CounterMetricFamily(
                "cdc_http_sink_requests",
                "Requests to the HTTP sink (the analytics API) by outcome: accepted (2xx), "
                "rejected (another 4xx, not retried), failed (an attempt that met a connection "
                "error, a 5xx or a 429; retried).",
                labels=["service", "outcome"],
            )
            requests.add_metric([SERVICE, "accepted"], float(self._http.sent))
            requests.add_metric([SERVICE, "rejected"], float(self._http.rejected))
            requests.add_metric([SERVICE, "failed"], float(self._http.failed))
            yield requests

    def describe(self) -> Iterable[Metric]:
        return self.collect()
