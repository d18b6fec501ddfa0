"""Writes the shop's orders and order lines to the analytics lake: Apache Iceberg changes tables
committed exactly once, the window reports recomputed from them, and optionally the Parquet
objects of the lake before them.

``python -m analytics_flusher`` runs the service; ``IcebergSink`` (the tables alone),
``LakeSink`` (the Parquet objects, with the tables when a catalog is configured) and
``Decoder`` are its parts; ``queries`` and ``report_queries`` hold the SQL of the exact totals
and of the reports.
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
from analytics_flusher.iceberg_sink import IcebergSink
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
    "IcebergSink",
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
