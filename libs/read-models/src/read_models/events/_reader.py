"""The event store read back: a row's history, its state at a time, and the dead letters.

``EventStoreReader`` holds one pooled engine (``sink_kit.postgres.make_engine``; a CLI command
uses a pool of one, a server a larger one) and opens a connection per read. The history's SQL
is ``_history``'s; folding events into a state is pure (``_state.rebuild_state``). Database
errors become ``UnavailableError`` with a message an operator can act on. The writer's
dead-letter commands (replay, discard) build on the table and filters defined here
(``DEAD_LETTERS``, ``dead_letter_filter``, ``dead_letter_row``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sink_kit.postgres import make_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, Row
from sqlalchemy.sql.elements import ColumnElement

from read_models.errors import UnavailableError
from read_models.events._dead_letters import DeadLetterRow, Selection, decode_headers
from read_models.events._history import read_history, read_sweep
from read_models.events._state import StoredEvent, rebuild_state

__all__ = [
    "DEAD_LETTERS",
    "DEAD_LETTER_COLUMNS",
    "EventStoreReader",
    "dead_letter_filter",
    "dead_letter_row",
    "split_table",
    "store_errors",
]

#: The ``dead_letter_queue`` table (the columns the readers and the writer's commands use).
DEAD_LETTERS = sa.table(
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
DEAD_LETTER_COLUMNS = tuple(DEAD_LETTERS.c)


def split_table(name: str) -> tuple[str | None, str]:
    """``public.products`` -> (``public``, ``products``); ``products`` -> (None, ``products``)."""
    schema, dot, table = name.rpartition(".")
    return (schema or None, table) if dot else (None, name)


def _first_line(exc: sa_exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


@contextmanager
def store_errors(url_hint: str) -> Iterator[None]:
    """The database's failures as ``UnavailableError``: unreachable (or a statement timeout,
    no pooled connection), or the store's tables missing."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.TimeoutError, sa_exc.InterfaceError) as exc:
        raise UnavailableError(
            f"cannot reach the event store ({_first_line(exc)}); "
            f"check --database-url / DATABASE_URL ({url_hint})"
        ) from exc
    except sa_exc.ProgrammingError as exc:
        raise UnavailableError(
            f"the event store is not there ({_first_line(exc)}); "
            "has the writer run its migrations against this database and schema?"
        ) from exc


class EventStoreReader:
    """Reads rows' histories and dead letters from the store at ``url``.

    ``pool_size``/``max_overflow`` bound the engine's pool; ``statement_timeout_ms`` bounds
    every statement on the server (a read past it is ``UnavailableError``).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 1,
        max_overflow: int = 0,
        statement_timeout_ms: int = 60_000,
        application_name: str = "cdc-cli",
    ) -> None:
        try:
            self.hint = sa.make_url(url).render_as_string(hide_password=True)
        except sa_exc.ArgumentError:
            raise UnavailableError(
                "--database-url / DATABASE_URL is not a database URL "
                "(expected e.g. postgresql://user:password@host:5432/database)"
            ) from None
        self.engine: Engine = make_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            statement_timeout_ms=statement_timeout_ms,
            application_name=application_name,
        )

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """``UnavailableError`` unless the store answers and holds its events table."""
        with store_errors(self.hint), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1 FROM cdc_events LIMIT 0"))

    def key_columns(self, table: str) -> list[str]:
        """Key columns of ``table`` as the stored events show them (empty if unknown)."""
        schema, name = split_table(table)
        with store_errors(self.hint), self.engine.connect() as conn:
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
        """The events of ``key`` in ``table`` in source order (those by ``at``, if given)."""
        schema, name = split_table(table)
        with store_errors(self.hint), self.engine.connect() as conn:
            return read_history(conn, name, schema, key, at, truncates)

    def state(
        self, table: str, key: dict[str, Any], at: datetime
    ) -> tuple[dict[str, Any] | None, int]:
        """The row at ``at`` (``None``: absent, deleted or swept) and how many events made it.

        The sweeps applied are those of the table whose marking read (a snapshot's last read
        of the table) has a source time at or before ``at``.
        """
        schema, name = split_table(table)
        with store_errors(self.hint), self.engine.connect() as conn:
            events = read_history(conn, name, schema, key, at, True)
            sweep = read_sweep(conn, name, at)
        return rebuild_state(events, sweep), len(events)

    # -- dead_letter_queue ----------------------------------------------------------------------

    def dead_letters(self, selection: Selection, limit: int | None) -> list[DeadLetterRow]:
        """Rows matching ``selection``, newest first, at most ``limit`` (None: all)."""
        query = (
            sa.select(*DEAD_LETTER_COLUMNS)
            .where(*dead_letter_filter(selection))
            .order_by(DEAD_LETTERS.c.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with store_errors(self.hint), self.engine.connect() as conn:
            return [dead_letter_row(r) for r in conn.execute(query)]

    def dead_letter_counts(self, selection: Selection) -> list[tuple[str, str, int]]:
        """``(error_code, status, rows)`` of the rows matching ``selection``."""
        dlq = DEAD_LETTERS.c
        query = (
            sa.select(dlq.error_code, dlq.status, sa.func.count())
            .where(*dead_letter_filter(selection))
            .group_by(dlq.error_code, dlq.status)
            .order_by(dlq.error_code, dlq.status)
        )
        with store_errors(self.hint), self.engine.connect() as conn:
            return [(str(c), str(s), int(n)) for c, s, n in conn.execute(query)]

    def dead_letter(self, row_id: int) -> DeadLetterRow | None:
        query = sa.select(*DEAD_LETTER_COLUMNS).where(DEAD_LETTERS.c.id == row_id)
        with store_errors(self.hint), self.engine.connect() as conn:
            found = conn.execute(query).first()
        return None if found is None else dead_letter_row(found)


def dead_letter_filter(selection: Selection) -> list[ColumnElement[bool]]:
    """The ``WHERE`` conditions of ``selection``."""
    dlq = DEAD_LETTERS.c
    where: list[ColumnElement[bool]] = []
    if selection.ids:
        where.append(dlq.id.in_(selection.ids))
    if selection.status is not None:
        where.append(dlq.status == selection.status)
    if selection.topic is not None:
        where.append(dlq.topic == selection.topic)
    if selection.code is not None:
        where.append(dlq.error_code == selection.code)
    if selection.since is not None:
        where.append(dlq.created_at >= selection.since)
    return where


def dead_letter_row(r: Row[Any]) -> DeadLetterRow:
    """A ``dead_letter_queue`` row (all of ``DEAD_LETTER_COLUMNS``) as a ``DeadLetterRow``."""
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
