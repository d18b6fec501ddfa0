"""Aggregates orders over event-time windows and flushes Parquet reports to an S3 data lake.

``python -m analytics_flusher`` runs the service; ``LakeSink`` and ``Decoder`` are its parts,
``queries`` holds the DuckDB queries that compute exact totals from the written objects.
"""

from analytics_flusher._build import build_sink
from analytics_flusher._changes import Change, Decoder, ItemChange, OrderChange
from analytics_flusher._reports import REPORTS, ReportTable, build_reports, object_key
from analytics_flusher._uploads import ObjectStore
from analytics_flusher.domain import Part, PartitionWindows, WindowConfig
from analytics_flusher.errors import (
    AnalyticsFlusherError,
    HttpSinkUnavailable,
    UnencodableValueError,
    UnwritablePartError,
)
from analytics_flusher.settings import FlusherSettings
from analytics_flusher.sink import LakeSink
from analytics_flusher.store import SCHEMAS, S3Store, encode_jsonl, encode_parquet

__all__ = [
    "REPORTS",
    "SCHEMAS",
    "AnalyticsFlusherError",
    "Change",
    "Decoder",
    "FlusherSettings",
    "HttpSinkUnavailable",
    "ItemChange",
    "LakeSink",
    "ObjectStore",
    "OrderChange",
    "Part",
    "PartitionWindows",
    "ReportTable",
    "S3Store",
    "UnencodableValueError",
    "UnwritablePartError",
    "WindowConfig",
    "build_reports",
    "build_sink",
    "encode_jsonl",
    "encode_parquet",
    "object_key",
]
