"""The store as the operator CLI sees it: ``cdc history`` / ``cdc state`` and ``cdc dlq``.

Queries: a row's history and its table's sweep at a time (``_history_reads``), what the store
knows of a table's key, and the rows of ``dead_letter_queue``. The folding into a state is pure
(``_state.rebuild_state``). The only
writes are the DLQ's status changes (``replay_dead_letters``, ``discard_dead_letters``): rows
are locked with ``FOR UPDATE SKIP LOCKED``, so two operators never act on the same row, and a
row is marked replayed in the transaction that holds its lock, after the broker acknowledged
its record. Database errors are wrapped into ``StoreQueryError`` with a message an operator can
act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from consumer_runtime import Publisher
from sink_kit.postgres import make_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql.elements import ColumnElement

from event_store_writer._dlq import (
    DeadLetterRow,
    Outcome,
    Selection,
    Skipped,
    decode_headers,
    replay_record,
)
from event_store_writer._state import StoredEvent, rebuild_state
from event_store_writer.errors import StoreQueryError
from event_store_writer.store._history_reads import read_history, read_sweep

# -- dead_letter_queue -------------------------------------------------------------------------

_DLQ = sa.table(
    "dead_letter_queue",
    *(
        sa.column(name)
        for name in (
            "id",
            "created_at",
            "topic",
            "kafka_partition",
            "kafka_offset",
            "key",
            "value",
            "headers",
            "error_type",
            "error_code",
            "error_message",
            "retry_count",
            "status",
            "status_changed_at",
            "status_changed_by",
            "status_reason",
        )
    ),
)
_DLQ_COLUMNS = tuple(_DLQ.c)
# Rows locked, produced and marked replayed per transaction: locks are held for one chunk's
# production (a record is acknowledged in a few milliseconds) and progress is committed often.
_REPLAY_CHUNK = 100
_MARK_REPLAYED = sa.text(
    "UPDATE dead_letter_queue SET status = 'replayed', retry_count = retry_count + 1, "
    "status_changed_at = now(), status_changed_by = :by, status_reason = NULL "
    "WHERE id = ANY(:ids)"
)


def split_table(name: str) -> tuple[str | None, str]:
    """``public.products`` -> (``public``, ``products``); ``products`` -> (None, ``products``)."""
    schema, dot, table = name.rpartition(".")
    return (schema or None, table) if dot else (None, name)


@contextmanager
def _errors(url_hint: str) -> Iterator[None]:
    try:
        yield
    except sa_exc.OperationalError as exc:
        raise StoreQueryError(
            f"cannot reach the event store ({str(exc.orig).strip().splitlines()[0]}); "
            f"check --database-url / DATABASE_URL ({url_hint})"
        ) from exc
    except sa_exc.ProgrammingError as exc:
        raise StoreQueryError(
            f"the event store is not there ({str(exc.orig).strip().splitlines()[0]}); "
            "has the writer run its migrations against this database and schema?"
        ) from exc


class StoreReader:
    """Reads a row's history from the store at ``url``."""

    def __init__(self, url: str) -> None:
        try:
            self._hint = sa.make_url(url).render_as_string(hide_password=True)
        except sa_exc.ArgumentError:
            raise StoreQueryError(
                "--database-url / DATABASE_URL is not a database URL "
                "(expected e.g. postgresql://user:password@host:5432/database)"
            ) from None
        self._engine: Engine = make_engine(
            url, pool_size=1, max_overflow=0, application_name="cdc-cli"
        )

    def close(self) -> None:
        self._engine.dispose()

    def key_columns(self, table: str) -> list[str]:
        """Key columns of ``table`` as the stored events show them (empty if unknown)."""
        schema, name = split_table(table)
        with _errors(self._hint), self._engine.connect() as conn:
            key = conn.execute(
                sa.text(
                    "SELECT key FROM cdc_events WHERE table_name = :t AND key IS NOT NULL "
                    "AND (:s IS NULL OR schema_name = :s) LIMIT 1"
                ),
                {"t": name, "s": schema},
            ).scalar()
        return list(key) if isinstance(key, dict) else []

    def history(
        self,
        table: str,
        key: dict[str, Any],
        *,
        at: datetime | None = None,
        truncates: bool = False,
    ) -> list[StoredEvent]:
        schema, name = split_table(table)
        with _errors(self._hint), self._engine.connect() as conn:
            return read_history(conn, name, schema, key, at, truncates)

    def state(
        self, table: str, key: dict[str, Any], at: datetime
    ) -> tuple[dict[str, Any] | None, int]:
        """The row at ``at`` (``None``: absent, deleted or swept) and how many events made it.

        The sweeps applied are those of the table whose marking read (a snapshot's last read
        of the table) has a source time at or before ``at``.
        """
        schema, name = split_table(table)
        with _errors(self._hint), self._engine.connect() as conn:
            events = read_history(conn, name, schema, key, at, True)
            sweep = read_sweep(conn, name, at)
        return rebuild_state(events, sweep), len(events)

    # -- dead_letter_queue (cdc dlq) ------------------------------------------------------------

    def dead_letters(self, selection: Selection, limit: int | None) -> list[DeadLetterRow]:
        """Rows matching ``selection``, newest first, at most ``limit`` (None: all)."""
        query = sa.select(*_DLQ_COLUMNS).where(*_where(selection)).order_by(_DLQ.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with _errors(self._hint), self._engine.connect() as conn:
            return [_dead_letter(r) for r in conn.execute(query)]

    def dead_letter_counts(self, selection: Selection) -> list[tuple[str, str, int]]:
        """``(error_code, status, rows)`` of the rows matching ``selection``."""
        query = (
            sa.select(_DLQ.c.error_code, _DLQ.c.status, sa.func.count())
            .where(*_where(selection))
            .group_by(_DLQ.c.error_code, _DLQ.c.status)
            .order_by(_DLQ.c.error_code, _DLQ.c.status)
        )
        with _errors(self._hint), self._engine.connect() as conn:
            return [(str(c), str(s), int(n)) for c, s, n in conn.execute(query)]

    def dead_letter(self, row_id: int) -> DeadLetterRow | None:
        with _errors(self._hint), self._engine.connect() as conn:
            found = conn.execute(sa.select(*_DLQ_COLUMNS).where(_DLQ.c.id == row_id)).first()
        return None if found is None else _dead_letter(found)

    def replay_dead_letters(
        self,
        selection: Selection,
        publisher: Publisher | None,
        *,
        changed_by: str,
        chunk: int = _REPLAY_CHUNK,
    ) -> Outcome:
        """Produce the original record of every selected ``new`` row to its original topic.

        ``publisher`` None is a dry run: the rows that would be replayed, nothing locked or
        produced. Otherwise, in chunks of ``chunk`` rows in id order, each chunk in one
        transaction: lock the rows (``FOR UPDATE SKIP LOCKED``: a row another replay or discard
        holds is skipped, never produced twice), produce each record and wait for the broker's
        acknowledgement (``Publisher.send`` flushes and checks the delivery report), then mark
        the acknowledged rows ``replayed`` (``retry_count + 1``) and commit. The first record
        that cannot be produced stops the replay: the rows acknowledged before it are committed
        as replayed, it and the rest stay ``new`` (``Outcome.failed``/``error``). Rows created
        after the replay started (a replayed record dead-lettered again) are not picked up.
        """
        outcome = Outcome(execute=publisher is not None)
        new = Selection(selection.ids, "new", selection.topic, selection.code, selection.since)
        with _errors(self._hint):
            with self._engine.connect() as conn:
                upper = conn.execute(sa.select(sa.func.max(_DLQ.c.id))).scalar()
                if publisher is None:
                    outcome.done = _select_new(conn, new, upper, after=0, limit=None, lock=False)
            if publisher is not None and upper is not None:
                self._replay(new, upper, publisher, changed_by, chunk, outcome)
            with self._engine.connect() as conn:
                outcome.skipped = _skipped(conn, selection, upper, outcome)
        return outcome

    def _replay(
        self,
        new: Selection,
        upper: int,
        publisher: Publisher,
        changed_by: str,
        chunk: int,
        outcome: Outcome,
    ) -> None:
        after = 0
        while outcome.failed is None:
            with self._engine.connect() as conn:
                tx = conn.begin()
                rows = _select_new(conn, new, upper, after=after, limit=chunk, lock=True)
                if not rows:
                    tx.rollback()
                    return
                sent: list[DeadLetterRow] = []
                try:
                    for row in rows:
                        publisher.send(row.topic, [replay_record(row)])
                        sent.append(row)
                except KeyboardInterrupt:  # commit what the broker acknowledged, then stop
                    outcome.failed, outcome.interrupted = rows[len(sent)], True
                    outcome.error = "interrupted while waiting for the broker's acknowledgement"
                except Exception as exc:  # any failure to produce: the row stays new
                    outcome.failed, outcome.error = rows[len(sent)], str(exc) or repr(exc)
                try:
                    if sent:
                        marked = {"ids": [r.id for r in sent], "by": changed_by}
                        conn.execute(_MARK_REPLAYED, marked)
                    tx.commit()
                except sa_exc.SQLAlchemyError as exc:
                    raise StoreQueryError(
                        f"the records of rows {', '.join(str(r.id) for r in sent)} were produced "
                        f"but marking them replayed failed ({_first_line(exc)}); they are still "
                        "'new': do not replay them again, discard them "
                        "(cdc dlq discard ID ... --execute)"
                    ) from exc
            outcome.done.extend(sent)
            after = rows[-1].id

    def discard_dead_letters(
        self, selection: Selection, *, execute: bool, changed_by: str, reason: str | None
    ) -> Outcome:
        """Mark the selected ``new`` rows ``discarded`` (dry run unless ``execute``).

        Rows another replay or discard holds are skipped (``SKIP LOCKED``), as are rows that
        are not ``new`` any more.
        """
        outcome = Outcome(execute=execute)
        new = Selection(selection.ids, "new", selection.topic, selection.code, selection.since)
        with _errors(self._hint):
            with self._engine.begin() as conn:
                upper = conn.execute(sa.select(sa.func.max(_DLQ.c.id))).scalar()
                if not execute:
                    outcome.done = _select_new(conn, new, upper, after=0, limit=None, lock=False)
                elif upper is not None:
                    locked = (
                        sa.select(_DLQ.c.id)
                        .where(*_where(new), _DLQ.c.id <= upper)
                        .with_for_update(skip_locked=True)
                    )
                    update = (
                        sa.update(_DLQ)
                        .where(_DLQ.c.id.in_(locked))
                        .values(
                            status="discarded",
                            status_changed_at=sa.func.now(),
                            status_changed_by=changed_by,
                            status_reason=reason,
                        )
                        .returning(*_DLQ_COLUMNS)
                    )
                    done = [_dead_letter(r) for r in conn.execute(update)]
                    outcome.done = sorted(done, key=lambda r: r.id)
            with self._engine.connect() as conn:
                outcome.skipped = _skipped(conn, selection, upper, outcome)
        return outcome


def _where(selection: Selection) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if selection.ids:
        where.append(_DLQ.c.id.in_(selection.ids))
    if selection.status is not None:
        where.append(_DLQ.c.status == selection.status)
    if selection.topic is not None:
        where.append(_DLQ.c.topic == selection.topic)
    if selection.code is not None:
        where.append(_DLQ.c.error_code == selection.code)
    if selection.since is not None:
        where.append(_DLQ.c.created_at >= selection.since)
    return where


def _select_new(
    conn: Connection,
    new: Selection,
    upper: int | None,
    *,
    after: int,
    limit: int | None,
    lock: bool,
) -> list[DeadLetterRow]:
    """The ``new`` rows of ``new`` with ``after < id <= upper``, in id order."""
    if upper is None:
        return []
    query = (
        sa.select(*_DLQ_COLUMNS)
        .where(*_where(new), _DLQ.c.id > after, _DLQ.c.id <= upper)
        .order_by(_DLQ.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    if lock:
        query = query.with_for_update(skip_locked=True)
    return [_dead_letter(r) for r in conn.execute(query)]


def _skipped(
    conn: Connection, selection: Selection, upper: int | None, outcome: Outcome
) -> list[Skipped]:
    """The selected rows the command left alone (not ``new``, locked, not reached, unknown)."""
    handled = {r.id for r in outcome.done}
    if outcome.failed is not None:
        handled.add(outcome.failed.id)
    rows: list[tuple[int, str]] = []
    if upper is not None:
        any_status = Selection(
            selection.ids, None, selection.topic, selection.code, selection.since
        )
        query = (
            sa.select(_DLQ.c.id, _DLQ.c.status)
            .where(*_where(any_status), _DLQ.c.id <= upper)
            .order_by(_DLQ.c.id)
        )
        rows = [(int(i), str(s)) for i, s in conn.execute(query) if int(i) not in handled]
    out = []
    for row_id, status in rows:
        if status != "new":
            reason = f"already {status}"
        elif outcome.failed is not None:
            reason = f"not attempted: stopped at row {outcome.failed.id}"
        else:
            reason = "locked by another replay or discard in progress"
        out.append(Skipped(row_id, status, reason))
    found = {r.id for r in outcome.done} | {i for i, _ in rows}
    if outcome.failed is not None:
        found.add(outcome.failed.id)
    out += [Skipped(i, None, "no such row") for i in selection.ids if i not in found]
    return out


def _dead_letter(r: Row[Any]) -> DeadLetterRow:
    return DeadLetterRow(
        id=int(r.id),
        created_at=r.created_at,
        topic=r.topic,
        partition=int(r.kafka_partition),
        offset=int(r.kafka_offset),
        key=None if r.key is None else bytes(r.key),
        value=None if r.value is None else bytes(r.value),
        headers=decode_headers(r.headers),
        error_type=r.error_type,
        error_code=r.error_code,
        error_message=r.error_message,
        retry_count=int(r.retry_count),
        status=r.status,
        status_changed_at=r.status_changed_at,
        status_changed_by=r.status_changed_by,
        status_reason=r.status_reason,
    )


def _first_line(exc: sa_exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__
