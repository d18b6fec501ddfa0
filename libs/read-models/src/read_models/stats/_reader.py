"""The statistics read model (``services/stats-aggregator`` writes it) read back: one row of a
statistics table or view per call, the user's with the activity watermark it is as of, and the
products low on stock.

``StatsReader`` holds one pooled engine (``sink_kit.postgres.make_engine``: a pool of one for a
CLI command, a larger one for a server; ``pre_ping=False`` for a server answering many small
reads) and checks a connection out per read. An unreachable
database, a statement past its timeout or a database without the read model's tables becomes
``UnavailableError`` with a message an operator can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg2
import sqlalchemy as sa
from consumer_runtime import RetryableError
from sink_kit.postgres import db_errors, make_engine
from sqlalchemy.engine import Connection

from read_models.errors import InvalidQueryError, UnavailableError

__all__ = ["KINDS", "StatsReader"]

#: kind -> (table or view, key column); the names are fixed, never taken from a request.
_VIEWS: Final = {
    "customer": ("customer_stats", "customer_id"),
    "product": ("product_stats", "product_id"),
    "user": ("user_stats", "user_id"),
}
KINDS: Final = tuple(_VIEWS)
_LOW_STOCK: Final = sa.text(
    "SELECT * FROM product_stats WHERE low_stock AND NOT deleted "
    "ORDER BY stock, product_id LIMIT :n"
)


def read_one(conn: Connection, view: str, key: str, value: Any) -> dict[str, Any] | None:
    """One statistics row as a dict (``view``/``key`` are fixed names from ``_VIEWS``)."""
    row = (
        conn.execute(sa.text(f"SELECT * FROM {view} WHERE {key} = :v"), {"v": value})  # noqa: S608
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def read_watermark(conn: Connection) -> Any:
    """The latest user-event time seen: what the user scores are as of."""
    return conn.execute(
        sa.text("SELECT max_event_at FROM activity_watermark WHERE id = 1")
    ).scalar()


#: The same reads as ``read_one`` and ``read_watermark``, for the driver's own cursor.
_ROW_SQL: Final = {
    kind: f"SELECT * FROM {view} WHERE {key} = %s"  # noqa: S608 - fixed names from _VIEWS
    for kind, (view, key) in _VIEWS.items()
}
_WATERMARK_SQL: Final = "SELECT max_event_at FROM activity_watermark WHERE id = 1"


def _autocommit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.autocommit = True


class StatsReader:
    """Read access to the statistics at ``database_url`` (a SQLAlchemy URL; the schema via
    ``options=-csearch_path``)."""

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = 1,
        max_overflow: int = 0,
        statement_timeout_ms: int = 60_000,
        application_name: str = "cdc-cli",
        pre_ping: bool = True,
    ) -> None:
        self.engine = make_engine(
            database_url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            statement_timeout_ms=statement_timeout_ms,
            application_name=application_name,
            pre_ping=pre_ping,
        )
        # Autocommit connections: a read is one or two statements, and without a transaction
        # psycopg2 sends no BEGIN before it and the pool's reset sends no ROLLBACK after it
        # (one round trip per read instead of three).
        sa.event.listen(self.engine, "connect", _autocommit)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connection(self, what: str) -> Iterator[Connection]:
        try:
            with db_errors(f"read {what}"), self.engine.connect() as conn:
                yield conn
        except RetryableError as exc:
            raise UnavailableError(f"{exc}: check DATABASE_URL and that it is reachable") from exc
        except sa.exc.ProgrammingError as exc:
            raise UnavailableError(
                f"{what} not found: is DATABASE_URL the aggregator's database (and schema)?"
            ) from exc

    def get(self, kind: str, key: int | str) -> dict[str, Any] | None:
        """The statistics row of one customer, product or user; None if it has none.

        The read API's hottest call, so it goes through the driver's own cursor on a pooled
        connection: SQLAlchemy's statement and result objects cost twice the CPU of the read
        itself (490 against 257 us a call, measured on the benchmark's stack). The values are
        the same (a ``text()`` statement has no column types to process)."""
        if kind not in _VIEWS:
            raise InvalidQueryError(f"no statistics of kind {kind!r} (one of {', '.join(KINDS)})")
        view = _VIEWS[kind][0]
        with self._raw(view) as cur:
            cur.execute(_ROW_SQL[kind], (key,))
            found = cur.fetchone()
            if found is None:
                return None
            row = dict(zip([c[0] for c in cur.description], found, strict=True))
            if kind == "user":
                cur.execute(_WATERMARK_SQL)
                mark = cur.fetchone()
                row["as_of"] = None if mark is None else mark[0]
            return row

    @contextmanager
    def _raw(self, what: str) -> Iterator[Any]:
        """A driver cursor on a pooled connection, with ``_connection``'s error mapping; a
        connection the server dropped is discarded, not returned to the pool."""
        try:
            with db_errors(f"read {what}"):
                raw = self.engine.raw_connection()
                try:
                    cur = raw.cursor()
                    try:
                        yield cur
                    finally:
                        cur.close()
                except psycopg2.OperationalError:
                    raw.invalidate()
                    raise
                finally:
                    raw.close()
        except RetryableError as exc:
            raise UnavailableError(f"{exc}: check DATABASE_URL and that it is reachable") from exc
        except psycopg2.ProgrammingError as exc:
            raise UnavailableError(
                f"{what} not found: is DATABASE_URL the aggregator's database (and schema)?"
            ) from exc

    def low_stock(self, limit: int = 100) -> list[dict[str, Any]]:
        """Live products flagged low on stock, lowest stock first (then by id), at most
        ``limit``."""
        if limit < 1:
            raise InvalidQueryError(f"limit must be at least 1, got {limit}")
        with self._connection("product_stats") as conn:
            return [dict(r) for r in conn.execute(_LOW_STOCK, {"n": limit}).mappings()]

    def ping(self) -> None:
        """``UnavailableError`` unless the database answers and holds the statistics."""
        with self._connection("product_stats") as conn:
            conn.execute(sa.text("SELECT 1 FROM product_stats LIMIT 0"))
