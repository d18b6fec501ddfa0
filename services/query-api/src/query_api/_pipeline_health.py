"""What the pipeline panel shows of one service, from its last scrapes. Pure.

A scrape is what one service's ``/metrics`` and ``/readyz`` answered at a time (or that it did
not answer). From the scrapes of the last ``window_s`` seconds: throughput is the growth of the
processed counter over that time, the p99 end to end is read off the latency histogram's bucket
deltas over it (``consumer_runtime.metrics_text``, as ``make up``'s live view does), both
counted again from a restart (a counter that fell). A service whose last scrape failed is down:
its figures are ``None``, never stale numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consumer_runtime.metrics_text import RuntimeFigures, bucket_quantile, recent_buckets
from pydantic import BaseModel

__all__ = ["Scrape", "ServiceHealth", "service_health"]


@dataclass(frozen=True)
class Scrape:
    """One scrape of one service at ``at`` (monotonic seconds)."""

    at: float
    #: its figures, or ``None`` when ``/metrics`` did not answer (or not with metrics)
    figures: RuntimeFigures | None
    ready: bool
    error: str | None = None


class ServiceHealth(BaseModel):
    """One service in ``GET /v1/pipeline``."""

    name: str
    metrics_url: str
    #: ``/metrics`` answered on the last scrape
    up: bool
    #: ``/readyz`` answered 200 on the last scrape
    ready: bool
    #: records not yet processed, over its topics and partitions
    lag: float | None
    #: records processed per second over the window (``None`` until two scrapes span it)
    throughput_per_s: float | None
    #: p99 end-to-end latency (source commit to durable) of what was written in the window, the
    #: upper bound of its histogram bucket; the last known figure while nothing was written
    p99_latency_s: float | None
    #: records it sent to its dead-letter topic since it started
    dead_letters: float | None
    processed: float | None
    retries: float | None
    #: why the last scrape failed
    error: str | None = None


def _since_restart(scrapes: Sequence[Scrape]) -> list[tuple[float, RuntimeFigures]]:
    """The answered scrapes from the last restart on (a processed counter that fell)."""
    answered = [(s.at, s.figures) for s in scrapes if s.figures is not None]
    start = 0
    for i in range(1, len(answered)):
        if answered[i][1].processed < answered[i - 1][1].processed:
            start = i
    return answered[start:]


def _window_p99(answered: list[tuple[float, RuntimeFigures]], since: float) -> float | None:
    """The p99 of the observations after the first scrape at or after ``since``; when the
    window saw none (a quiet stream), the newest kept span's that saw some, and past those the
    p99 since the process started (the first kept scrape's whole histogram)."""
    if not answered:
        return None
    latest = answered[-1][1].latency_buckets
    inside = [figures for at, figures in answered if at >= since]
    base = inside[0] if len(inside) > 1 else None
    if base is not None:
        p99 = bucket_quantile(recent_buckets(base.latency_buckets, latest).items(), 0.99)
        if p99 is not None:
            return p99
    for i in range(len(answered) - 1, 0, -1):  # the newest span that saw observations
        before, after = answered[i - 1][1], answered[i][1]
        p99 = bucket_quantile(
            recent_buckets(before.latency_buckets, after.latency_buckets).items(), 0.99
        )
        if p99 is not None:
            return p99
    return bucket_quantile(answered[0][1].latency_buckets.items(), 0.99)


def service_health(
    name: str, metrics_url: str, scrapes: Sequence[Scrape], window_s: float
) -> ServiceHealth:
    """The panel's row of ``name`` from its scrapes (oldest first; at least one)."""
    last = scrapes[-1]
    if last.figures is None:
        return ServiceHealth(
            name=name,
            metrics_url=metrics_url,
            up=False,
            ready=last.ready,
            lag=None,
            throughput_per_s=None,
            p99_latency_s=None,
            dead_letters=None,
            processed=None,
            retries=None,
            error=last.error,
        )
    answered = _since_restart(scrapes)
    since = last.at - window_s
    inside = [(at, f) for at, f in answered if at >= since]
    throughput = None
    if len(inside) > 1 and inside[-1][0] > inside[0][0]:
        (t0, f0), (t1, f1) = inside[0], inside[-1]
        throughput = (f1.processed - f0.processed) / (t1 - t0)
    figures = last.figures
    return ServiceHealth(
        name=name,
        metrics_url=metrics_url,
        up=True,
        ready=last.ready,
        # No lag reported yet (nothing fetched since the partitions joined) is "not known".
        lag=figures.lag if figures.lag_reported else None,
        throughput_per_s=throughput,
        p99_latency_s=_window_p99(answered, since),
        dead_letters=figures.dlq,
        processed=figures.processed,
        retries=figures.retries,
        error=last.error,
    )
