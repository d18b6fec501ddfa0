"""The flusher's sink built from its settings (the descriptor's ``sink`` factory): the Iceberg
changes tables and their scheduled jobs (``IcebergSink``), or the Parquet objects with the
optional analytics API (``LakeSink``), the Iceberg tables too when a catalog is configured."""

from __future__ import annotations

from consumer_runtime import TopicPartition
from sink_kit.metrics import AwsCallMetrics

from analytics_flusher._http import HttpPoster
from analytics_flusher._metrics import SERVICE, LakeMetrics, SinkGauges
from analytics_flusher.iceberg_sink import IcebergSink
from analytics_flusher.settings import FlusherSettings
from analytics_flusher.sink import LakeSink
from analytics_flusher.store import open_jobs, open_lake, open_writer

__all__ = ["build_sink"]


def build_sink(settings: FlusherSettings) -> LakeSink | IcebergSink:
    """The runtime's sink factory: the Iceberg tables alone (a catalog configured, no Parquet
    export), else the Parquet objects, with the Iceberg tables when a catalog is configured."""
    metrics = LakeMetrics()
    leader = TopicPartition(_orders_topic(settings), 0)
    if not settings.parquet_enabled:
        writer = open_writer(settings, metrics.registry)
        assert writer is not None  # a catalog is configured (parquet_enabled otherwise)
        tables = IcebergSink(writer, leader_partition=leader, metrics=metrics)
        tables.jobs = open_jobs(settings, tables.leads, metrics.registry)
        metrics.registry.register(SinkGauges(tables.buffered))
        return tables
    http = None
    if settings.http_sink_url is not None:
        http = HttpPoster(
            str(settings.http_sink_url),
            timeout_s=settings.http_sink_timeout_s,
            max_attempts=settings.http_sink_max_attempts,
        )
    sink = LakeSink(
        # Its S3 calls timed and throttled attempts counted, in the sink's registry.
        open_lake(settings, AwsCallMetrics(metrics.registry, SERVICE)),
        settings.window_config(),
        prefix=settings.s3_prefix,
        top_n=settings.top_n,
        jsonl_copy=settings.jsonl_copy,
        http=http,
        idle_flush_s=settings.idle_flush_seconds,
        upload_concurrency=settings.upload_concurrency,
        max_inflight=settings.upload_max_inflight,
        max_open_bytes=settings.max_open_bytes,
        metrics=metrics,
        changes=open_writer(settings, metrics.registry),
        leader_partition=leader,
    )
    sink.jobs = open_jobs(settings, sink.leads, metrics.registry)
    metrics.registry.register(SinkGauges(sink.buffered, http))
    return sink


def _orders_topic(settings: FlusherSettings) -> str:
    """The subscribed topic of the orders table (its last part), else the first topic."""
    for topic in settings.kafka_topics:
        if topic.rsplit(".", 1)[-1] == settings.orders_table:
            return topic
    return settings.kafka_topics[0]
