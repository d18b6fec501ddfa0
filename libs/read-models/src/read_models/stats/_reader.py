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
        """The statistics row of one customer, product or user; None if it has none."""
        if kind not in _VIEWS:
            raise InvalidQueryError(f"no statistics of kind {kind!r} (one of {', '.join(KINDS)})")
        view, column = _VIEWS[kind]
        with self._connection(view) as conn:
            row = read_one(conn, view, column, key)
            if row is not None and kind == "user":
                row["as_of"] = read_watermark(conn)
            return row

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
