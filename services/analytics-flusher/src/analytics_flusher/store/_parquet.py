"""Encode report tables as Parquet (and optionally JSON lines), byte for byte reproducibly.

Sits between ``_reports`` (rows) and the uploads (``_uploads``, which PUT the bytes). One
explicit Arrow schema per report (documented in the README); no pandas metadata, no timestamps
of the write itself, fixed compression and page settings, rows already in a fixed order:
encoding the same table twice gives the same bytes, so a replay rewrites an object with
identical content.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from analytics_flusher._reports import ReportTable

#: Amounts of one row (the images): the shop's numeric(12,2) totals and numeric(10,2) prices.
MONEY = pa.decimal128(18, 2)
#: Sums of amounts (the summaries): one line of the largest quantity (2^31 - 1) at the largest
#: price is 2.1e17, past decimal(18,2). 38 digits hold any sum a part can reach (below 10^35:
#: ``domain.MAX_PART_EVENTS``).
SUM_MONEY = pa.decimal128(38, 2)
TS_MS = pa.timestamp("ms", tz="UTC")

_IDENTITY = [
    pa.field("window_start", TS_MS, nullable=False),
    pa.field("window_end", TS_MS, nullable=False),
    pa.field("kafka_topic", pa.string(), nullable=False),
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("first_offset", pa.int64(), nullable=False),
    pa.field("last_offset", pa.int64(), nullable=False),
]

_MEASURES = [
    pa.field("orders_placed", pa.int64()),
    pa.field("revenue_placed", SUM_MONEY),
    pa.field("orders_cancelled", pa.int64()),
    pa.field("revenue_cancelled", SUM_MONEY),
    pa.field("net_orders", pa.int64()),
    pa.field("net_revenue", SUM_MONEY),
]

#: The part's sweep of the image report's table (``domain.Part.sweeps``), on every row of the
#: part's object; null when the part folded no last snapshot read of the table (queries.py).
_SWEEP = [pa.field("sweep_version", pa.string()), pa.field("sweep_offset", pa.int64())]

SCHEMAS: dict[str, pa.Schema] = {
    "orders": pa.schema(
        [
            *_IDENTITY,
            pa.field("order_id", pa.int64(), nullable=False),
            pa.field("customer_id", pa.int64()),
            pa.field("status", pa.string()),
            pa.field("total", MONEY),
            pa.field("created_at", pa.timestamp("us", tz="UTC")),
            pa.field("order_day", pa.date32()),
            pa.field("deleted", pa.bool_(), nullable=False),
            pa.field("op", pa.string(), nullable=False),
            pa.field("source_ts_ms", pa.int64(), nullable=False),
            pa.field("kafka_offset", pa.int64(), nullable=False),
            # cdc_events.source_version: a row's images are ordered by it (queries.py).
            pa.field("source_version", pa.string(), nullable=False),
            pa.field("changes", pa.int32(), nullable=False),
            pa.field("late", pa.bool_(), nullable=False),
            *_SWEEP,
        ]
    ),
    "order_items": pa.schema(
        [
            *_IDENTITY,
            pa.field("item_id", pa.int64(), nullable=False),
            pa.field("order_id", pa.int64()),
            pa.field("product_id", pa.int64()),
            pa.field("quantity", pa.int32()),
            pa.field("unit_price", MONEY),
            pa.field("deleted", pa.bool_(), nullable=False),
            pa.field("op", pa.string(), nullable=False),
            pa.field("source_ts_ms", pa.int64(), nullable=False),
            pa.field("kafka_offset", pa.int64(), nullable=False),
            # cdc_events.source_version: a row's images are ordered by it (queries.py).
            pa.field("source_version", pa.string(), nullable=False),
            pa.field("changes", pa.int32(), nullable=False),
            pa.field("late", pa.bool_(), nullable=False),
            *_SWEEP,
        ]
    ),
    "sales": pa.schema(
        [
            *_IDENTITY,
            pa.field("order_day", pa.date32()),
            *_MEASURES,
            pa.field("avg_order_value", SUM_MONEY),
        ]
    ),
    "customer_metrics": pa.schema(
        [
            *_IDENTITY,
            pa.field("order_day", pa.date32()),
            pa.field("customer_id", pa.int64()),
            *_MEASURES,
        ]
    ),
    "order_status": pa.schema(
        [*_IDENTITY, pa.field("status", pa.string()), pa.field("entered", pa.int64())]
    ),
    "status_transitions": pa.schema(
        [
            *_IDENTITY,
            pa.field("from_status", pa.string()),
            pa.field("to_status", pa.string()),
            pa.field("transitions", pa.int64()),
        ]
    ),
    "top_customers": pa.schema(
        [
            *_IDENTITY,
            pa.field("rank", pa.int32()),
            pa.field("customer_id", pa.int64()),
            pa.field("net_orders", pa.int64()),
            pa.field("net_revenue", SUM_MONEY),
        ]
    ),
    "product_sales": pa.schema(
        [
            *_IDENTITY,
            pa.field("product_id", pa.int64()),
            pa.field("lines", pa.int64()),
            pa.field("units", pa.int64()),
            pa.field("revenue", SUM_MONEY),
        ]
    ),
    "top_products": pa.schema(
        [
            *_IDENTITY,
            pa.field("rank", pa.int32()),
            pa.field("product_id", pa.int64()),
            pa.field("units", pa.int64()),
            pa.field("revenue", SUM_MONEY),
        ]
    ),
    "late": pa.schema(
        [
            *_IDENTITY,
            pa.field("event_window_start", TS_MS),
            pa.field("late_events", pa.int64()),
            pa.field("min_source_ts_ms", pa.int64()),
            pa.field("max_source_ts_ms", pa.int64()),
            pa.field("max_lateness_ms", pa.int64()),
        ]
    ),
}


def to_arrow(table: ReportTable) -> pa.Table:
    schema = SCHEMAS[table.report]
    return pa.Table.from_pydict(table.columns, schema=schema)


def encode_parquet(table: ReportTable) -> bytes:
    """Deterministic Parquet bytes: same table, same bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        to_arrow(table),
        sink,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        # One row group per object (parts are bounded by MAX_OPEN_ROWS and MAX_OPEN_BYTES).
        row_group_size=1 << 20,
        store_schema=True,
    )
    return bytes(sink.getvalue().to_pybytes())


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError


def encode_jsonl(table: ReportTable) -> bytes:
    """The same rows as JSON lines (keys sorted, decimals as exact strings, times ISO UTC)."""
    names = list(table.columns)
    lines = []
    for i in range(table.num_rows):
        row = {n: table.columns[n][i] for n in names}
        lines.append(
            orjson.dumps(
                row,
                default=_json_default,
                option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC,
            )
        )
    return b"\n".join(lines) + (b"\n" if lines else b"")
