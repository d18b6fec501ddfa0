"""Turn a closed window part into report tables and their object keys (pure).

Sits between ``domain`` (which accumulates parts) and ``store._parquet`` (which encodes
tables). Rows come out in a fixed order and keys are built only from the window and the Kafka
position, so the same part always produces the same objects under the same keys.

A part's sweep of its table (``Part.sweeps``) is written into the part's image report: every
row of it carries ``sweep_version`` and ``sweep_offset`` (null when the part folded no last
read), so the sweep is in the same object as the images, durable when they are, and a query
always finds the column (an object of its own would be missing from most lakes, and DuckDB
fails on a glob that matches nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from analytics_flusher._changes import ZERO, ItemChange, OrderChange
from analytics_flusher.domain import Part

#: Every report the flusher writes, in write order. The two image reports are the facts the
#: exact totals are computed from; the others are per-window summaries for dashboards.
ORDER_REPORTS = (
    "orders",
    "sales",
    "customer_metrics",
    "order_status",
    "status_transitions",
    "top_customers",
)
ITEM_REPORTS = ("order_items", "product_sales", "top_products")
REPORTS = (*ORDER_REPORTS, *ITEM_REPORTS, "late")

Columns = dict[str, list[Any]]


@dataclass(frozen=True, slots=True)
class ReportTable:
    """One report of one part: its object key (without extension) and its columns."""

    report: str
    key: str
    columns: Columns

    @property
    def num_rows(self) -> int:
        return len(next(iter(self.columns.values()), []))


def window_label(start_ms: int) -> str:
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    return f"{start.year:04d}{start:%m%dT%H%M%SZ}"  # %Y does not pad years before 1000


# 400 Gregorian years (146,097 days): the calendar repeats, so an instant past datetime's last
# year is written as the one 400 years earlier with the year put back.
_CYCLE_MS = 146_097 * 86_400_000


def iso_utc(ms: int) -> str:
    """ISO-8601 of an epoch-ms instant, also past 9999-12-31 (the end of that year's last
    window, for an event time at the end of the range the parser accepts)."""
    if ms < _AFTER_9999_MS:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
    shifted = datetime.fromtimestamp((ms - _CYCLE_MS) / 1000, UTC)
    return f"{shifted.year + 400}{shifted.isoformat()[4:]}"


_AFTER_9999_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z


def object_key(prefix: str, report: str, part: Part) -> str:
    """``<prefix>/<report>/dt=YYYY-MM-DD/hour=HH/window=<start>/part-<topic>-<p>-<first>-<last>``."""
    start = datetime.fromtimestamp(part.window_start / 1000, UTC)
    head = f"{prefix}/{report}" if prefix else report
    return (
        f"{head}/dt={start.year:04d}-{start:%m-%d}/hour={start:%H}"
        f"/window={window_label(part.window_start)}"
        f"/part-{part.topic}-{part.partition}-{part.first_offset:012d}-{part.last_offset:012d}"
    )


def _identity(part: Part, n: int) -> Columns:
    return {
        "window_start": [part.window_start] * n,
        "window_end": [part.window_end] * n,
        "kafka_topic": [part.topic] * n,
        "kafka_partition": [part.partition] * n,
        "first_offset": [part.first_offset] * n,
        "last_offset": [part.last_offset] * n,
    }


def _table(report: str, prefix: str, part: Part, rows: list[dict[str, Any]]) -> ReportTable:
    columns = _identity(part, len(rows))
    if rows:
        for name in rows[0]:
            columns[name] = [r[name] for r in rows]
    return ReportTable(report, object_key(prefix, report, part), columns)


def _nulls_first(value: Any) -> tuple[bool, Any]:
    return (value is not None, value)


def build_reports(part: Part, prefix: str, top_n: int) -> list[ReportTable]:
    """Every non-empty report of ``part``, in a fixed order."""
    tables: list[ReportTable] = []
    is_orders = any(isinstance(c, OrderChange) for c in part.images.values())
    if is_orders:
        tables.append(_table("orders", prefix, part, _order_rows(part)))
        tables.extend(_order_summaries(part, prefix, top_n))
    elif part.images:
        tables.append(_table("order_items", prefix, part, _item_rows(part)))
        tables.extend(_item_summaries(part, prefix, top_n))
    if part.late:
        rows = [
            {
                "event_window_start": start,
                "late_events": s.count,
                "min_source_ts_ms": s.min_ts,
                "max_source_ts_ms": s.max_ts,
                "max_lateness_ms": s.max_lateness_ms,
            }
            for start, s in sorted(part.late.items())
        ]
        tables.append(_table("late", prefix, part, rows))
    return [t for t in tables if t.num_rows]


def _order_rows(part: Part) -> list[dict[str, Any]]:
    sweep, sweep_offset = part.sweeps.get(OrderChange.table, (None, None))
    rows = []
    for ident in sorted(part.images):
        c = part.images[ident]
        assert isinstance(c, OrderChange)
        rows.append(
            {
                "order_id": c.order_id,
                "customer_id": c.customer_id,
                "status": c.status,
                "total": c.total,
                "created_at": c.created_at,
                "order_day": c.order_day,
                "deleted": c.deleted,
                "op": c.op,
                "source_ts_ms": c.source_ts_ms,
                "kafka_offset": c.offset,
                "source_version": c.version,
                "changes": part.changes[ident],
                "late": ident in part.late_ids,
                "sweep_version": sweep,
                "sweep_offset": sweep_offset,
            }
        )
    return rows


def _item_rows(part: Part) -> list[dict[str, Any]]:
    sweep, sweep_offset = part.sweeps.get(ItemChange.table, (None, None))
    rows = []
    for ident in sorted(part.images):
        c = part.images[ident]
        assert isinstance(c, ItemChange)
        rows.append(
            {
                "item_id": c.item_id,
                "order_id": c.order_id,
                "product_id": c.product_id,
                "quantity": c.quantity,
                "unit_price": c.unit_price,
                "deleted": c.deleted,
                "op": c.op,
                "source_ts_ms": c.source_ts_ms,
                "kafka_offset": c.offset,
                "source_version": c.version,
                "changes": part.changes[ident],
                "late": ident in part.late_ids,
                "sweep_version": sweep,
                "sweep_offset": sweep_offset,
            }
        )
    return rows


def _avg(revenue: Decimal, n: int) -> Decimal | None:
    return (revenue / n).quantize(Decimal("0.01")) if n > 0 else None


def _measures(acc: list[Any]) -> dict[str, Any]:
    return {
        "orders_placed": acc[0],
        "revenue_placed": acc[1],
        "orders_cancelled": acc[2],
        "revenue_cancelled": acc[3],
        "net_orders": acc[4],
        "net_revenue": acc[5],
    }


def _order_summaries(part: Part, prefix: str, top_n: int) -> list[ReportTable]:
    by_day: dict[Any, list[Any]] = {}
    by_customer: dict[Any, list[Any]] = {}
    for (day, customer), acc in part.customers.items():
        for target, key in ((by_day, day), (by_customer, customer)):
            total = target.get(key)
            if total is None:
                target[key] = list(acc)
            else:
                for i, value in enumerate(acc):
                    total[i] += value
    sales = [
        {"order_day": day, **_measures(acc), "avg_order_value": _avg(acc[1], acc[0])}
        for day, acc in sorted(by_day.items(), key=lambda kv: _nulls_first(kv[0]))
    ]
    customers = [
        {"order_day": day, "customer_id": customer, **_measures(acc)}
        for (day, customer), acc in sorted(
            part.customers.items(),
            key=lambda kv: (_nulls_first(kv[0][0]), _nulls_first(kv[0][1])),
        )
    ]
    status = [{"status": s, "entered": n} for s, n in sorted(part.status_entered.items())]
    transitions = [
        {"from_status": a, "to_status": b, "transitions": n}
        for (a, b), n in sorted(part.transitions.items())
    ]
    ranked = sorted(by_customer.items(), key=lambda kv: (-kv[1][5], -kv[1][4], _nulls_first(kv[0])))
    top = [
        {"rank": i + 1, "customer_id": c, "net_orders": acc[4], "net_revenue": acc[5]}
        for i, (c, acc) in enumerate(ranked[:top_n])
    ]
    return [
        _table("sales", prefix, part, sales),
        _table("customer_metrics", prefix, part, customers),
        _table("order_status", prefix, part, status),
        _table("status_transitions", prefix, part, transitions),
        _table("top_customers", prefix, part, top),
    ]


def _item_summaries(part: Part, prefix: str, top_n: int) -> list[ReportTable]:
    products = [
        {"product_id": p, "lines": acc[0], "units": acc[1], "revenue": acc[2]}
        for p, acc in sorted(part.products.items(), key=lambda kv: _nulls_first(kv[0]))
    ]
    ranked = sorted(
        part.products.items(), key=lambda kv: (-kv[1][2], -kv[1][1], _nulls_first(kv[0]))
    )
    top = [
        {"rank": i + 1, "product_id": p, "units": acc[1], "revenue": acc[2]}
        for i, (p, acc) in enumerate(ranked[:top_n])
        if acc[2] != ZERO or acc[1]
    ]
    return [
        _table("product_sales", prefix, part, products),
        _table("top_products", prefix, part, top),
    ]


def window_summary(part: Part, tables: list[ReportTable]) -> dict[str, Any]:
    """The JSON document the optional HTTP sink posts for a part (plain JSON types)."""
    summary: dict[str, Any] = {
        "window_start": iso_utc(part.window_start),
        "window_end": iso_utc(part.window_end),
        "topic": part.topic,
        "partition": part.partition,
        "first_offset": part.first_offset,
        "last_offset": part.last_offset,
        "events": part.events,
        "objects": [t.key for t in tables],
    }
    for table in tables:
        if table.report in ("orders", "order_items"):
            continue
        names = [n for n in table.columns if n not in _IDENTITY]
        summary[table.report] = [
            {n: _plain(table.columns[n][i]) for n in names} for i in range(table.num_rows)
        ]
    return summary


_IDENTITY = frozenset(_identity(Part("", 0, 0, 0, 0), 0))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
