"""The offsets a sink-managed service stores with its data (``sink_kit.postgres.OffsetStore``).

A sink-managed service (event store, statistics) writes its next offsets into its own
database's ``consumer_offsets`` table in the transaction of each batch, and the runtime starts
each assigned partition from there. Those rows, not the group's Kafka offsets, decide where the
service resumes: a reset has to rewrite them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa
from consumer_runtime import TopicPartition
from sink_kit.postgres import OffsetStore, make_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from cdc_cli._connect import CliError, redact


class SinkOffsets:
    """The ``consumer_offsets`` table of one sink database (URL as the service's DATABASE_URL,
    including a ``search_path`` in ``options`` when the service uses one)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = redact(url)
        self._store = OffsetStore(sa.MetaData())
        try:
            self._engine = make_engine(
                url,
                pool_size=1,
                max_overflow=0,
                statement_timeout_ms=30_000,
                application_name="cdc-cli",
            )
        except (sa_exc.ArgumentError, ValueError) as exc:
            raise CliError(f"not a database URL: {self.shown} ({exc})") from exc

    @property
    def table_name(self) -> str:
        return self._store.table.name

    def load(self, group: str) -> dict[TopicPartition, int]:
        """Every partition the group has a stored offset for."""
        t = self._store.table
        with self._errors(), self._engine.connect() as conn:
            self._check_table(conn)
            rows = conn.execute(
                # -1: a partition a member claimed before anything was stored for it.
                sa.select(t.c.topic, t.c.partition, t.c.next_offset).where(
                    t.c.group_id == group, t.c.next_offset >= 0
                )
            )
            return dict(
                sorted((TopicPartition(topic, part), int(off)) for topic, part, off in rows)
            )

    def rewrite(
        self,
        group: str,
        offsets: Mapping[TopicPartition, int],
        before_commit: Callable[[], None] = lambda: None,
    ) -> None:
        """Upsert the group's offsets in one transaction; ``before_commit`` runs inside it, so
        when it raises (e.g. Kafka refused its own change) nothing is written."""
        with self._errors(), self._engine.begin() as conn:
            self._check_table(conn)
            self._store.save(conn, group, offsets)
            before_commit()

    def close(self) -> None:
        self._engine.dispose()

    def _check_table(self, conn: Connection) -> None:
        if not sa.inspect(conn).has_table(self.table_name):
            raise CliError(
                f"{self.shown} has no {self.table_name} table: pass the database of a "
                "sink-managed service (with its schema in the URL's search_path if it uses one)"
            )

    def _errors(self) -> AbstractContextManager[None]:
        return _database_errors(self.shown)


@contextmanager
def _database_errors(shown: str) -> Iterator[None]:
    """Database failures as ``CliError`` naming the (password-free) URL."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise CliError(f"cannot reach the database {shown}: {_first_line(exc)}") from exc
    except sa_exc.DBAPIError as exc:
        raise CliError(f"database error on {shown}: {_first_line(exc)}") from exc


def _first_line(exc: sa_exc.DBAPIError) -> str:
    text = str(exc.orig or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
