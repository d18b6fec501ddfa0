"""Reading a runtime's ``/metrics`` back: the figures a live view or a dashboard shows.

The runtime writes its metrics (``_metrics.py``); tools that scrape them (``make up``'s live
view, the read API's pipeline panel) read them here, so both sum the same samples and compute
the same p99. The p99 of "what was written lately" comes from the difference of two scrapes of
the end-to-end latency histogram (``recent_buckets``), read off as the upper bound of the bucket
that holds it (``bucket_quantile``), as Prometheus' ``histogram_quantile`` would without
interpolation. Pure: text in, numbers out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["RuntimeFigures", "bucket_quantile", "parse_runtime_metrics", "recent_buckets"]


@dataclass
class RuntimeFigures:
    """One scrape of a runtime, summed over topics and partitions."""

    processed: float = 0.0
    dlq: float = 0.0
    skipped: float = 0.0
    retries: float = 0.0
    lag: float = 0.0
    #: whether any partition's lag was reported: a member that has not yet fetched from its
    #: partitions reports none, which is "not known yet", not "no lag"
    lag_reported: bool = False
    lag_by_topic: dict[str, float] = field(default_factory=dict)
    #: ``cdc_end_to_end_latency_seconds`` over every topic: bucket upper bound -> cumulative count
    latency_buckets: dict[float, float] = field(default_factory=dict)


def parse_runtime_metrics(text: str) -> RuntimeFigures:
    """The runtime's figures in a Prometheus text exposition (other metrics are ignored).

    Raises ``ValueError`` when the text is not an exposition.
    """
    figures = RuntimeFigures()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cdc_messages_total":
                outcome = sample.labels.get("outcome")
                if outcome == "processed":
                    figures.processed += sample.value
                elif outcome == "dlq":
                    figures.dlq += sample.value
                elif outcome == "skipped":
                    figures.skipped += sample.value
            elif sample.name == "cdc_retries_total":
                figures.retries += sample.value
            elif sample.name == "cdc_consumer_lag":
                figures.lag += sample.value
                figures.lag_reported = True
                topic = sample.labels.get("topic", "?")
                figures.lag_by_topic[topic] = figures.lag_by_topic.get(topic, 0.0) + sample.value
            elif sample.name == "cdc_end_to_end_latency_seconds_bucket":
                le = float(sample.labels["le"])
                figures.latency_buckets[le] = figures.latency_buckets.get(le, 0.0) + sample.value
    return figures


def recent_buckets(before: Mapping[float, float], now: Mapping[float, float]) -> dict[float, float]:
    """Cumulative bucket counts of the observations between two scrapes of a histogram (all of
    ``now`` when a count fell: the process restarted and its counters began again)."""
    if any(now.get(le, 0.0) < count for le, count in before.items()):
        return dict(now)
    return {le: count - before.get(le, 0.0) for le, count in now.items()}


def bucket_quantile(buckets: Iterable[tuple[float, float]], q: float) -> float | None:
    """The upper bound of the histogram bucket holding quantile ``q`` of cumulative
    ``(le, count)`` pairs (repeated bounds are summed); ``None`` without observations."""
    merged: dict[float, float] = {}
    for le, count in buckets:
        merged[le] = merged.get(le, 0.0) + count
    if not merged:
        return None
    ordered = sorted(merged.items())
    total = ordered[-1][1]
    if total <= 0:
        return None
    for le, count in ordered:
        if count >= q * total:
            return le
    return ordered[-1][0]
