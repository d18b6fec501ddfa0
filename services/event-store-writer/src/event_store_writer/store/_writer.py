"""One write of the event store: a batch (or several) in one PostgreSQL transaction.

COPY the decoded rows into temporary tables, then ``INSERT ... SELECT`` them into the store,
absorbing ids already stored (``ON CONFLICT DO NOTHING`` on ``cdc_event_ids`` /
``user_events``), record the sweeps the batch carries (``cdc_sweeps``, a redelivered one is a
no-op), and upsert the batches' next offsets into ``consumer_offsets``, all in one
transaction: a crash before the commit leaves neither rows nor offsets. Database outages surface
as ``RetryableError``.

``cdc_events`` is partitioned by month; a month's partition is created in its own short
transaction, under an advisory lock, before the write that needs it (ahead of time for the
coming months, on demand for older ones, e.g. a snapshot of old rows).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg2.errors
import sqlalchemy as sa
import structlog
from consumer_runtime import Batch, DeadLetter, RetryableError, TopicPartition
from sink_kit.pgcopy import copy_text, copy_text_rows
from sink_kit.postgres import OffsetStore, db_errors
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from event_store_writer._metrics import SERVICE, StoreMetrics
from event_store_writer._prepared import (
    LINE_COLUMNS,
    Prepared,
    change_line,
    concat_prepared,
    months_of,
    split_batches,
    sweeps_of,
    unique_changes,
    unique_user_events,
)
from event_store_writer.domain import (
    USER_EVENT_COLUMNS,
    ChangeRow,
    StoreRecord,
    TransactionRow,
    UserEventRow,
    month_bounds_ms,
    months_ahead,
    partition_name,
    with_resolved_delete,
)
from event_store_writer.store import _sql as sql

_log = structlog.get_logger("event_store_writer")
_INSERT_DEAD_LETTER = sa.text(sql.INSERT_DEAD_LETTER)
_FIND_DELETE = sa.text(sql.FIND_DELETE)
_INSERT_SWEEP = sa.text(sql.INSERT_SWEEP)
_TRANSACTION_COLUMNS = (
    "topic",
    "tx_id",
    "begin_id",
    "end_id",
    "event_count",
    "data_collections",
    "begin_ms",
    "end_ms",
)


class BatchWriter:
    """Writes batches to the store; one at a time (the sink serialises the calls)."""

    def __init__(
        self, engine: Engine, group_id: str, partitions_ahead: int, metrics: StoreMetrics
    ) -> None:
        self._engine = engine
        self._group = group_id
        self._ahead = partitions_ahead
        self.metrics = metrics
        self._offsets = OffsetStore(sa.MetaData())
        self._months: set[tuple[int, int]] = set()
        self._ahead_checked: tuple[int, int] | None = None

    def load_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Claim ``partitions`` and read their stored offsets: from now on a write by their
        previous owner (a zombie) is fenced (``OffsetStore``)."""
        with db_errors("claiming partitions"), self._engine.begin() as conn:
            return self._offsets.claim(conn, self._group, list(partitions))

    def write(self, batches: Sequence[Batch[StoreRecord]]) -> None:
        """Append ``batches`` (in order) and their next offsets in one transaction."""
        self.write_prepared([self.prepare(batches)])

    def prepare(self, batches: Sequence[Batch[StoreRecord]]) -> Prepared:
        split = split_batches(batches)
        changes = self._resolve_tombstones(split.changes)
        changes, change_dups = unique_changes(changes)
        users, user_dups = unique_user_events(split.user_events)
        next_offsets: dict[TopicPartition, int] = {}
        dead: list[DeadLetter] = []
        for batch in batches:
            next_offsets.update(batch.next_offsets)
            dead.extend(batch.dead_letters)
        return Prepared(
            change_ids=[r.event_id for r in changes],
            change_times=[r.values[1] for r in changes],
            change_lines=[change_line(r.values) for r in changes],
            months=months_of(changes),
            users=users,
            transactions=split.transactions,
            dead=dead,
            next_offsets=next_offsets,
            duplicates=change_dups,
            user_duplicates=user_dups,
            sweeps=sweeps_of(changes),
        )

    def write_prepared(self, preps: Sequence[Prepared]) -> None:
        """Write prepared batches (in order) and their next offsets in one transaction."""
        prep = preps[0] if len(preps) == 1 else concat_prepared(preps)
        self.ensure_ahead()
        self.ensure_partitions(prep.months)
        with (
            _concurrent_duplicates(),
            db_errors("writing a batch to the event store"),
            self._engine.begin() as conn,
        ):
            if prep.users or prep.transactions:
                conn.exec_driver_sql(sql.TEMP_TABLES)
            appended = self._append_changes(conn, prep)
            self._record_sweeps(conn, prep)
            user_appended = self._append_user_events(conn, prep.users)
            self._merge_transactions(conn, prep.transactions)
            self._store_dead_letters(conn, prep.dead)
            self._offsets.save(conn, self._group, prep.next_offsets)
        stored = len(prep.change_ids) - appended + prep.duplicates
        self.metrics.count("cdc_events", appended, stored)
        users = len(prep.users)
        self.metrics.count(
            "user_events", user_appended, users - user_appended + prep.user_duplicates
        )

    # -- partitions -------------------------------------------------------------------------

    def ensure_ahead(self) -> None:
        """Partitions for the current month and ``partitions_ahead`` after it."""
        now = datetime.now(UTC)
        current = (now.year, now.month)
        if self._ahead_checked == current:
            return
        self.ensure_partitions(months_ahead(now.year, now.month, self._ahead))
        self._ahead_checked = current

    def ensure_partitions(self, months: Iterable[tuple[int, int]]) -> None:
        missing = sorted(set(months) - self._months)
        if not missing:
            return
        with db_errors("creating partitions of cdc_events"), self._engine.begin() as conn:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:name || current_schema()))"),
                {"name": f"{SERVICE}.partitions."},
            )
            existing = set(
                conn.execute(
                    sa.text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                        "ON c.oid = i.inhrelid WHERE i.inhparent = 'cdc_events'::regclass"
                    )
                ).scalars()
            )
            for year, month in missing:
                name = partition_name("cdc_events", year, month)
                if name in existing:
                    continue
                lo, hi = month_bounds_ms(year, month)
                conn.exec_driver_sql(
                    f'CREATE TABLE "{name}" PARTITION OF cdc_events FOR VALUES FROM '
                    f"('{_iso(lo)}') TO ('{_iso(hi)}')"
                )
                self.metrics.partitions_created.labels(SERVICE).inc()
                _log.info("created partition", partition=name)
        self._months.update(missing)

    # -- the write path ---------------------------------------------------------------------

    def _append_changes(self, conn: Connection, prep: Prepared) -> int:
        """COPY the new rows; returns how many were new.

        Optimistic: a batch rarely holds an id stored before (only after a Debezium re-emit),
        so the rows are COPYed at once under a savepoint and the primary key of
        ``cdc_event_ids`` is the check. On a conflict the savepoint is rolled back, the stored
        ids are looked up and only the others are COPYed.
        """
        ids = prep.change_ids
        if not ids:
            return 0
        try:
            with conn.begin_nested():
                self._copy_changes(conn, prep, None)
            return len(ids)
        except (psycopg2.errors.UniqueViolation, sa_exc.IntegrityError) as exc:
            if getattr(getattr(exc, "orig", exc), "pgcode", None) != "23505":
                raise
        stored = set(conn.exec_driver_sql(sql.EXISTING_IDS, {"ids": ids}).scalars())
        keep = [i for i, event_id in enumerate(ids) if event_id not in stored]
        self._copy_changes(conn, prep, keep)
        return len(keep)

    @staticmethod
    def _copy_changes(conn: Connection, prep: Prepared, keep: list[int] | None) -> None:
        ids, times, lines = prep.change_ids, prep.change_times, prep.change_lines
        if keep is not None:
            ids = [ids[i] for i in keep]
            times = [times[i] for i in keep]
            lines = [lines[i] for i in keep]
        # Ids are hex digests and times ISO literals: COPY text as they are, nothing to escape.
        id_text = "".join(
            [f"{event_id}\t{time_}\n" for event_id, time_ in zip(ids, times, strict=True)]
        )
        copy_text(conn, "cdc_event_ids", ("event_id", "event_time"), id_text)
        copy_text(conn, "cdc_events", LINE_COLUMNS, "".join(lines))

    @staticmethod
    def _record_sweeps(conn: Connection, prep: Prepared) -> None:
        """Each sweep once per table (rare: one per table and snapshot)."""
        if prep.sweeps:
            conn.execute(_INSERT_SWEEP, [dataclasses.asdict(s) for s in prep.sweeps])

    def _append_user_events(self, conn: Connection, rows: Sequence[UserEventRow]) -> int:
        if not rows:
            return 0
        copy_text_rows(conn, "esw_user_events", USER_EVENT_COLUMNS, [r.values for r in rows])
        appended = int(conn.exec_driver_sql(sql.INSERT_USER_EVENTS).rowcount)
        conn.exec_driver_sql(sql.UPSERT_USERS)
        return appended

    def _merge_transactions(self, conn: Connection, rows: Sequence[TransactionRow]) -> None:
        if not rows:
            return
        merged: dict[tuple[str, str], list[Any]] = {}
        for r in rows:
            m = merged.setdefault((r.topic, r.tx_id), [r.topic, r.tx_id, *[None] * 6])
            if r.status == "BEGIN":
                m[2], m[6] = m[2] or r.raw_id, m[6] or r.ts_ms
            else:
                m[3], m[7] = m[3] or r.raw_id, m[7] or r.ts_ms
                m[4], m[5] = m[4] if m[4] is not None else r.event_count, m[5] or r.data_collections
        copy_text_rows(conn, "esw_transactions", _TRANSACTION_COLUMNS, merged.values())
        conn.exec_driver_sql(sql.UPSERT_TRANSACTIONS)

    def _store_dead_letters(self, conn: Connection, dead: Sequence[DeadLetter]) -> None:
        if not dead:
            return
        conn.execute(
            _INSERT_DEAD_LETTER,
            [
                {
                    "topic": d.topic,
                    "partition": d.partition,
                    "offset": d.offset,
                    "key": d.key,
                    "value": d.value,
                    "headers": _headers_json(d.headers),
                    "error_type": d.exception_class,
                    "error_code": d.code,
                    "error_message": d.message,
                }
                for d in dead
            ],
        )

    def _resolve_tombstones(self, rows: list[ChangeRow]) -> list[ChangeRow]:
        """Give tombstones whose delete this process did not see the id derived from it."""
        if not any(r.needs_delete for r in rows):
            return rows
        out: list[ChangeRow] = []
        with db_errors("looking up deletes of tombstones"), self._engine.connect() as conn:
            for i, row in enumerate(rows):
                if not row.needs_delete:
                    out.append(row)
                    continue
                v = row.values
                found = _delete_in(rows[:i], v)
                if found is None:
                    hit = conn.execute(
                        _FIND_DELETE,
                        {
                            "key_hash": v[23],
                            "table": v[9],
                            "key": v[11] or "null",
                            "topic": v[3],
                            "partition": v[4],
                            "offset": v[5],
                        },
                    ).first()
                    found = (
                        None if hit is None else (str(hit[0]), int(hit[1]), _int(hit[2]), hit[3])
                    )
                if found is None:
                    out.append(with_resolved_delete(row, None, None, None))
                else:
                    out.append(with_resolved_delete(row, *found))
        return out


@contextmanager
def _concurrent_duplicates() -> Iterator[None]:
    """A unique violation on cdc_event_ids: another writer stored some of these ids after our
    look-up (a zombie member during a rebalance). The transaction is rolled back; retrying the
    batch finds them stored and skips them."""
    try:
        yield
    except (psycopg2.errors.UniqueViolation, sa_exc.IntegrityError) as exc:
        orig = getattr(exc, "orig", exc)
        if getattr(orig, "pgcode", None) != "23505":
            raise
        raise RetryableError(
            "another writer stored some of this batch's events concurrently; retrying"
        ) from exc


def _delete_in(
    rows: Sequence[ChangeRow], v: tuple[Any, ...]
) -> tuple[str, int, int | None, str | None] | None:
    for r in reversed(rows):
        rv = r.values
        if rv[10] == "d" and rv[3] == v[3] and rv[4] == v[4] and rv[11] == v[11] and rv[5] < v[5]:
            return r.event_id, r.event_time_ms, rv[17], rv[24]
    return None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _headers_json(headers: Sequence[tuple[str, bytes | None]]) -> str | None:
    """Headers losslessly as JSON: ``[[name, base64 or null], ...]``."""
    if not headers:
        return None
    return orjson.dumps(
        [
            [name, None if value is None else base64.b64encode(value).decode()]
            for name, value in headers
        ]
    ).decode()
