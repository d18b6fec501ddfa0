"""Months of the store (pure): ``cdc_events`` is partitioned by UTC month of ``event_time``."""

from __future__ import annotations

from datetime import UTC, datetime


def month_of_ms(ts_ms: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return moment.year, moment.month


def month_bounds_ms(year: int, month: int) -> tuple[int, int]:
    """[start, end) of a UTC month in epoch milliseconds."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def months_ahead(year: int, month: int, count: int) -> list[tuple[int, int]]:
    """``(year, month)`` and the ``count`` months after it."""
    out = []
    for i in range(count + 1):
        index = year * 12 + (month - 1) + i
        out.append((index // 12, index % 12 + 1))
    return out


def partition_name(table: str, year: int, month: int) -> str:
    return f"{table}_y{year:04d}m{month:02d}"
