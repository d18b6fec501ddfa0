"""A batch made ready for the database (pure Python work, no I/O): rows split by table,
repeats dropped, changes encoded as COPY lines. The sink does this on the loop's thread while
the previous batch is being written, so the writer thread only waits on the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from consumer_runtime import Batch, DeadLetter, TopicPartition
from sink_kit.pgcopy import encode_value

from event_store_writer._months import month_bounds_ms, month_of_ms
from event_store_writer.domain import (
    CHANGE_COLUMNS,
    ChangeRow,
    StoreRecord,
    TransactionRow,
    UserEventRow,
)


@dataclass(slots=True)
class _Split:
    changes: list[ChangeRow]
    user_events: list[UserEventRow]
    transactions: list[TransactionRow]


@dataclass(frozen=True, slots=True)
class Sweep:
    """A ``cdc_sweeps`` row: the sweep of a table carried by a snapshot's last read of it."""

    table_name: str
    sweep_version: str
    event_id: str
    topic: str
    kafka_partition: int
    kafka_offset: int
    event_time: str
    """ISO, the read's ``event_time`` (its source time)."""


@dataclass(slots=True)
class Prepared:
    """Batches ready for the database: rows deduplicated and encoded as COPY lines.

    Built by ``prepare`` (Python work, done where the caller has time to spare); written by
    ``write_prepared`` (database work only).
    """

    change_ids: list[str]
    change_times: list[str]
    change_lines: list[str]
    months: set[tuple[int, int]]
    users: list[UserEventRow]
    transactions: list[TransactionRow]
    dead: list[DeadLetter]
    next_offsets: dict[TopicPartition, int]
    duplicates: int
    user_duplicates: int
    sweeps: list[Sweep] = field(default_factory=list)


#: Column order of a COPY line of ``cdc_events`` (``change_line``): the columns that say where a
#: change comes from (kind, topic, connector, database, schema, table) last, so that their
#: encoded text is one cached suffix per table.
_ORIGIN_COLUMNS: Final = ("kind", "topic", "connector", "db_name", "schema_name", "table_name")
LINE_COLUMNS: Final = (
    *(c for c in CHANGE_COLUMNS if c not in _ORIGIN_COLUMNS),
    *_ORIGIN_COLUMNS,
)
_MAX_ORIGINS: Final = 4096
_origins: dict[tuple[Any, ...], str] = {}


def change_line(v: tuple[Any, ...]) -> str:
    """A ``cdc_events`` row (``CHANGE_COLUMNS`` order) as a COPY text line in ``LINE_COLUMNS``
    order: ``encode_row`` of the reordered values, unrolled (a unit test checks both agree).

    Ids, times, kinds, ops, offsets, numbers and versions (ASCII letters and digits) never
    need escaping; the JSON columns are orjson's output, which escapes every control character,
    so only their backslashes need doubling; the free-text columns go through
    ``encode_value``, the six that name the row's origin once per table (a cached suffix).
    """
    origin = (v[2], v[3], v[6], v[7], v[8], v[9])
    suffix = _origins.get(origin)
    if suffix is None:
        if len(_origins) >= _MAX_ORIGINS:
            _origins.clear()
        suffix = _origins[origin] = "\t".join([encode_value(x) for x in origin]) + "\n"
    n = "\\N"
    j = _json_text
    return (
        f"{v[0]}\t{v[1]}\t{v[4]}\t{v[5]}\t{n if v[10] is None else v[10]}\t"
        f"{j(v[11])}\t{j(v[12])}\t{j(v[13])}\t{encode_value(v[14])}\t"
        f"{n if v[15] is None else v[15]}\t{n if v[16] is None else v[16]}\t"
        f"{n if v[17] is None else v[17]}\t"
        f"{n if v[18] is None else v[18]}\t{encode_value(v[19])}\t{j(v[20])}\t{j(v[21])}\t"
        f"{'t' if v[22] else 'f'}\t{n if v[23] is None else v[23]}\t"
        f"{n if v[24] is None else v[24]}\t{suffix}"
    )


def _json_text(text: str | None) -> str:
    """orjson's output in COPY's text format (it holds no raw control character)."""
    if text is None:
        return "\\N"
    return text if "\\" not in text else text.replace("\\", "\\\\")


def months_of(rows: Sequence[ChangeRow]) -> set[tuple[int, int]]:
    """The months of ``rows`` (consecutive rows mostly share one: its bounds are kept)."""
    out: set[tuple[int, int]] = set()
    lo = hi = 0
    for row in rows:
        ts = row.event_time_ms
        if not lo <= ts < hi:
            month = month_of_ms(ts)
            out.add(month)
            lo, hi = month_bounds_ms(*month)
    return out


def concat_prepared(preps: Sequence[Prepared]) -> Prepared:
    """Several prepared batches as one (a rewrite after a failure); the last offsets win."""
    out = Prepared([], [], [], set(), [], [], [], {}, 0, 0)
    seen: set[str] = set()
    for p in preps:
        for event_id, time_, line in zip(p.change_ids, p.change_times, p.change_lines, strict=True):
            if event_id in seen:
                out.duplicates += 1
                continue
            seen.add(event_id)
            out.change_ids.append(event_id)
            out.change_times.append(time_)
            out.change_lines.append(line)
        out.months |= p.months
        out.users.extend(p.users)
        out.transactions.extend(p.transactions)
        out.dead.extend(p.dead)
        out.next_offsets.update(p.next_offsets)
        out.duplicates += p.duplicates
        out.user_duplicates += p.user_duplicates
        out.sweeps.extend(p.sweeps)
    users, dups = unique_user_events(out.users)
    out.users = users
    out.user_duplicates += dups
    return out


def split_batches(batches: Sequence[Batch[StoreRecord]]) -> _Split:
    out = _Split([], [], [])
    for batch in batches:
        for record in batch:
            if type(record) is ChangeRow:
                out.changes.append(record)
            elif type(record) is UserEventRow:
                out.user_events.append(record)
            elif type(record) is TransactionRow:
                out.transactions.append(record)
    return out


def sweeps_of(rows: Sequence[ChangeRow]) -> list[Sweep]:
    """The sweeps carried by ``rows`` (a snapshot's last read of a table carries one)."""
    return [
        Sweep(r.values[9], r.sweep, r.event_id, r.values[3], r.values[4], r.values[5], r.values[1])
        for r in rows
        if r.sweep is not None and r.values[9] is not None
    ]


def unique_changes(rows: list[ChangeRow]) -> tuple[list[ChangeRow], int]:
    """Rows with distinct ids (the first wins) and how many repeats were dropped."""
    seen: set[str] = set()
    out = []
    for row in rows:
        if row.event_id not in seen:
            seen.add(row.event_id)
            out.append(row)
    return out, len(rows) - len(out)


def unique_user_events(rows: list[UserEventRow]) -> tuple[list[UserEventRow], int]:
    seen: set[str] = set()
    out = []
    for row in rows:
        if row.event_id not in seen:
            seen.add(row.event_id)
            out.append(row)
    return out, len(rows) - len(out)
