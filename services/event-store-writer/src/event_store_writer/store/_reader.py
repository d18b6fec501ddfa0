"""The event store as the operator CLI sees it: ``cdc history`` / ``cdc state`` and ``cdc dlq``.

The reads (a row's history, its state at a time, the dead letters and their counts) are
``read_models.events.EventStoreReader``'s, shared with the query API; ``StoreReader`` adds the
DLQ's status changes (``replay_dead_letters``, ``discard_dead_letters``): rows are locked with
``FOR UPDATE SKIP LOCKED``, so two operators never act on the same row, and a row is marked
replayed in the transaction that holds its lock, after the broker acknowledged its record.
Database errors are the library's ``UnavailableError`` (reads) or ``StoreQueryError`` (a
replay whose marking failed), with a message an operator can act on.
"""

from __future__ import annotations

import sqlalchemy as sa
from consumer_runtime import Publisher
from read_models.events import (
    DEAD_LETTER_COLUMNS,
    DEAD_LETTERS,
    DeadLetterRow,
    EventStoreReader,
    Selection,
    dead_letter_filter,
    dead_letter_row,
    split_table,
    store_errors,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from event_store_writer._dlq import Outcome, Skipped, replay_record
from event_store_writer.errors import StoreQueryError

__all__ = ["StoreReader", "split_table"]

_DLQ = DEAD_LETTERS
_DLQ_COLUMNS = DEAD_LETTER_COLUMNS
_where = dead_letter_filter
_dead_letter = dead_letter_row
# Rows locked, produced and marked replayed per transaction: locks are held for one chunk's
# production (a record is acknowledged in a few milliseconds) and progress is committed often.
_REPLAY_CHUNK = 100
_MARK_REPLAYED = sa.text(
    "UPDATE dead_letter_queue SET status = 'replayed', retry_count = retry_count + 1, "
    "status_changed_at = now(), status_changed_by = :by, status_reason = NULL "
    "WHERE id = ANY(:ids)"
)


class StoreReader(EventStoreReader):
    """The library's reads of the store at ``url``, plus the DLQ's replays and discards."""

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
        with store_errors(self.hint):
            with self.engine.connect() as conn:
                upper = conn.execute(sa.select(sa.func.max(_DLQ.c.id))).scalar()
                if publisher is None:
                    outcome.done = _select_new(conn, new, upper, after=0, limit=None, lock=False)
            if publisher is not None and upper is not None:
                self._replay(new, upper, publisher, changed_by, chunk, outcome)
            with self.engine.connect() as conn:
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
            with self.engine.connect() as conn:
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
        with store_errors(self.hint):
            with self.engine.begin() as conn:
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
            with self.engine.connect() as conn:
                outcome.skipped = _skipped(conn, selection, upper, outcome)
        return outcome


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


def _first_line(exc: sa_exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__
