"""PostgreSQL building blocks for sink-managed services (event store, statistics).

The write path these support is one transaction per batch: COPY the batch into a temporary
table, ``INSERT ... SELECT ... ON CONFLICT`` into the real one, upsert the batch's next offsets
into ``consumer_offsets``, commit. Database outages surface as ``RetryableError`` so the runtime
pauses and retries; a value the database refuses for good surfaces as ``RejectedError`` so the
runtime isolates the record and dead-letters it with the database's reason; anything else is a
bug and propagates.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import sqlalchemy as sa
from consumer_runtime import (
    FencedError,
    RejectedError,
    RetryableError,
    RuntimeSettings,
    TopicPartition,
)
from pydantic import Field, SecretStr
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from sink_kit.pgcopy import copy_text_rows

__all__ = [
    "FencedError",
    "OffsetStore",
    "PostgresSinkSettings",
    "copy_rows",
    "db_errors",
    "make_engine",
    "upgrade_schema",
]


class PostgresSinkSettings(RuntimeSettings):
    """Runtime settings plus the sink database (``DATABASE_URL`` and pool sizing)."""

    database_url: SecretStr
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_max_overflow: int = Field(default=5, ge=0, le=100)
    # Recycle connections after 30 min: below typical idle timeouts of RDS proxies and NATs.
    db_pool_recycle_s: int = Field(default=1800, ge=30)
    # A batch statement running longer than this is treated as an outage (retried), not a hang.
    db_statement_timeout_ms: int = Field(default=60_000, ge=1000)


def make_engine(
    url: str | SecretStr,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_recycle_s: int = 1800,
    statement_timeout_ms: int = 60_000,
    application_name: str = "cdc-consumer",
    pre_ping: bool = True,
) -> Engine:
    """A psycopg2 engine with a bounded ``QueuePool``, pre-ping (unless ``pre_ping`` is False:
    a reader that answers many small requests saves a round trip per checkout, and a dead
    connection fails one request and is dropped from the pool) and recycle."""
    raw = url.get_secret_value() if isinstance(url, SecretStr) else url
    parsed = sa.make_url(raw)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    # libpq "options" from the URL (e.g. a search_path) are kept, the timeout is added to them.
    options = str(parsed.query.get("options", "")).strip()
    parsed = parsed.difference_update_query(["options"])
    options = f"{options} -c statement_timeout={statement_timeout_ms}".strip()
    return sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        pool_recycle=pool_recycle_s,
        # Wait at most 30 s for a pooled connection before treating the database as down.
        pool_timeout=30,
        connect_args={
            "application_name": application_name,
            # Fail fast on a dead server: the runtime retries with backoff instead.
            "connect_timeout": 5,
            "options": options,
        },
    )


def engine_from_settings(settings: PostgresSinkSettings, application_name: str) -> Engine:
    return make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle_s=settings.db_pool_recycle_s,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        application_name=application_name,
    )


__all__ += ["engine_from_settings"]


@contextmanager
def db_errors(what: str) -> Iterator[None]:
    """Map connection-level failures to ``RetryableError`` and refused values to
    ``RejectedError``; let real bugs propagate.

    Retryable: the server is unreachable, restarting or dropped the connection, the pool is
    exhausted, a statement timed out, or a serialization/deadlock conflict. Rejected (a record's
    value, retrying cannot help): data exceptions (22: out of range, invalid text, characters
    the encoding cannot hold), integrity violations other than a duplicate key (23: check,
    not-null, foreign key), program limits (54: an index row too large), and values the driver
    cannot send (a NUL character in a string). Everything else (a duplicate key, syntax errors,
    missing tables) propagates: those are bugs or concurrency the caller handles.
    """
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated or _retryable_dbapi(exc.orig):
            raise RetryableError(f"{what}: database unavailable ({_first_line(exc)})") from exc
        # The dead letter names the driver's error (psycopg2.errors.NumericValueOutOfRange),
        # not SQLAlchemy's wrapper.
        if _rejected_dbapi(exc.orig):
            code = getattr(exc.orig, "pgcode", "")
            raise RejectedError(
                f"{what}: refused by PostgreSQL ({code}): {_reason(exc.orig)}"
            ) from exc.orig
        if isinstance(exc.orig, ValueError | UnicodeEncodeError):
            raise RejectedError(f"{what}: cannot be sent to PostgreSQL: {exc.orig}") from exc.orig
        raise
    except psycopg2.Error as exc:
        # Raised by the raw driver (COPY through ``copy_expert``), not wrapped by SQLAlchemy.
        if isinstance(exc, psycopg2.OperationalError) or _retryable_dbapi(exc):
            raise RetryableError(f"{what}: database unavailable ({_first_line(exc)})") from exc
        if _rejected_dbapi(exc):
            raise RejectedError(
                f"{what}: refused by PostgreSQL ({exc.pgcode}): {_reason(exc)}"
            ) from exc
        raise
    except (ValueError, UnicodeEncodeError) as exc:
        # psycopg2 refuses to adapt a value before sending it ("A string literal cannot
        # contain NUL (0x00) characters", a lone surrogate): the record's, not the database's.
        raise RejectedError(f"{what}: cannot be sent to PostgreSQL: {exc}") from exc
    except sa_exc.TimeoutError as exc:  # pool exhausted
        raise RetryableError(f"{what}: no database connection available") from exc


# SQLSTATE classes that a retry can resolve: connection exceptions (08), operator intervention
# such as admin shutdown (57), insufficient resources (53), serialization failure / deadlock
# (40001, 40P01), and statement timeout (57014, within 57).
_RETRYABLE_SQLSTATE_PREFIXES = ("08", "53", "57", "40001", "40P01")


def _retryable_dbapi(orig: BaseException | None) -> bool:
    if isinstance(orig, psycopg2.OperationalError | psycopg2.InterfaceError):
        code = getattr(orig, "pgcode", None)
        return code is None or code.startswith(_RETRYABLE_SQLSTATE_PREFIXES)
    code = getattr(orig, "pgcode", None)
    return isinstance(code, str) and code.startswith(_RETRYABLE_SQLSTATE_PREFIXES)


# SQLSTATE classes of a value the database refuses for good: data exception (22), integrity
# constraint violation (23; a duplicate key, 23505, is left to the caller: it means a concurrent
# writer, not a bad value), program limit exceeded (54: an index row past the btree maximum).
_REJECTED_SQLSTATE_PREFIXES = ("22", "23", "54")


def _rejected_dbapi(orig: BaseException | None) -> bool:
    code = getattr(orig, "pgcode", None)
    return (
        isinstance(code, str) and code.startswith(_REJECTED_SQLSTATE_PREFIXES) and code != "23505"
    )


def _reason(exc: BaseException | None) -> str:
    """The database's own message (first line) and its DETAIL line, without the SQL."""
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    kept = lines[:1] + [line for line in lines[1:] if line.startswith("DETAIL")]
    return " ".join(kept)[:1000]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: COPY rows into a table (text format); one encoder for the whole kit: ``sink_kit.pgcopy``.
copy_rows = copy_text_rows


class OffsetStore:
    """The ``consumer_offsets`` table: (group, topic, partition) -> next offset to read.

    Written in the same transaction as the data it describes (the sink-managed strategy), read
    on partition assignment so the consumer resumes exactly after the last committed batch.

    **Zombies are fenced.** A member claims its partitions when they are assigned (``claim``:
    the row's ``owner_epoch`` goes up by one, in a transaction of its own, and the stored
    offsets are read back). Every later ``save`` of this store instance checks, in the same
    statement, that the row still carries the epoch it claimed and that the offset does not
    move backwards; otherwise it raises ``FencedError`` and the caller's transaction (with the
    rows it wrote) is rolled back. A member that stalled past its session timeout and woke up
    after its successor claimed the partition can therefore neither overwrite the successor's
    work nor move its offsets back. A save for a partition this instance never claimed (an
    operator's ``cdc offsets reset`` with the group stopped) is not fenced.
    """

    def __init__(self, metadata: sa.MetaData, table_name: str = "consumer_offsets") -> None:
        self.table = sa.Table(
            table_name,
            metadata,
            sa.Column("group_id", sa.Text, primary_key=True),
            sa.Column("topic", sa.Text, primary_key=True),
            sa.Column("partition", sa.Integer, primary_key=True),
            sa.Column("next_offset", sa.BigInteger, nullable=False),
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.now(),
            ),
            sa.Column("owner_epoch", sa.BigInteger, nullable=False, server_default="0"),
        )
        # (group, partition) -> the epoch this instance claimed; kept after a partition leaves
        # (a late write for it must stay fenced, not become unfenced).
        self._epochs: dict[tuple[str, TopicPartition], int] = {}
        quoted = '"' + table_name.replace('"', '""') + '"'  # an identifier; values are parameters
        # Fixed statements whatever the number of partitions: no SQL is compiled per batch (the
        # batch's writer thread would hold the interpreter lock for it). ``next_offset`` -1 is
        # a claimed partition nothing was stored for yet; ``owner_epoch`` -1 in a save means
        # "not claimed by this writer": no fence.
        self._claim = (
            f"INSERT INTO {quoted} AS c (group_id, topic, partition, next_offset, owner_epoch) "  # noqa: S608
            "SELECT %(group_id)s, t, p, -1, 1 FROM unnest("
            "%(topics)s::text[], %(partitions)s::integer[]) AS u(t, p) "
            "ON CONFLICT (group_id, topic, partition) DO UPDATE "
            "SET owner_epoch = c.owner_epoch + 1 "
            "RETURNING topic, partition, next_offset, owner_epoch"
        )
        self._upsert = (
            "WITH saved AS ("  # noqa: S608
            f"INSERT INTO {quoted} AS c (group_id, topic, partition, next_offset, owner_epoch) "
            "SELECT %(group_id)s, t, p, o, e FROM unnest(%(topics)s::text[], "
            "%(partitions)s::integer[], %(offsets)s::bigint[], %(epochs)s::bigint[]) "
            "AS u(t, p, o, e) "
            "ON CONFLICT (group_id, topic, partition) DO UPDATE "
            "SET next_offset = EXCLUDED.next_offset, updated_at = now() "
            "WHERE EXCLUDED.owner_epoch = -1 OR (c.owner_epoch = EXCLUDED.owner_epoch "
            "AND c.next_offset <= EXCLUDED.next_offset) "
            "RETURNING topic, partition) "
            "SELECT topic, partition FROM saved"
        )

    def load(
        self, conn: Connection, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Stored offsets of ``partitions`` (a partition with none is left out)."""
        if not partitions:
            return {}
        t = self.table
        wanted = {(tp.topic, tp.partition) for tp in partitions}
        rows = conn.execute(
            sa.select(t.c.topic, t.c.partition, t.c.next_offset).where(
                t.c.group_id == group, t.c.topic.in_({tp.topic for tp in partitions})
            )
        )
        return {
            TopicPartition(topic, part): int(offset)
            for topic, part, offset in rows
            if (topic, part) in wanted and offset >= 0
        }

    def claim(
        self, conn: Connection, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Claim ``partitions`` for this writer (on assignment) and return their stored offsets
        (a partition with none is left out). Run it in a transaction of its own (``begin()``)
        and commit it before writing: from then on an earlier owner's writes are fenced."""
        if not partitions:
            return {}
        items = sorted(set(partitions))
        rows = conn.exec_driver_sql(
            self._claim,
            {
                "group_id": group,
                "topics": [tp.topic for tp in items],
                "partitions": [tp.partition for tp in items],
            },
        ).all()
        out: dict[TopicPartition, int] = {}
        for topic, part, offset, epoch in rows:
            tp = TopicPartition(topic, part)
            self._epochs[group, tp] = int(epoch)
            if offset >= 0:
                out[tp] = int(offset)
        return out

    def save(
        self, conn: Connection, group: str, next_offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Upsert the next offsets, in (topic, partition) order (concurrent writers lock rows in
        one order); ``FencedError`` if another writer claimed one of the partitions since this
        one did, or the offset would move backwards."""
        if not next_offsets:
            return
        items = sorted(next_offsets.items())
        saved = conn.exec_driver_sql(
            self._upsert,
            {
                "group_id": group,
                "topics": [tp.topic for tp, _ in items],
                "partitions": [tp.partition for tp, _ in items],
                "offsets": [offset for _, offset in items],
                "epochs": [self._epochs.get((group, tp), -1) for tp, _ in items],
            },
        ).all()
        if len(saved) == len(items):
            return
        done = {TopicPartition(topic, part) for topic, part in saved}
        fenced = [f"{tp.topic}[{tp.partition}]" for tp, _ in items if tp not in done]
        raise FencedError(
            f"offsets of {', '.join(fenced)} were not written: another member of group "
            f"{group!r} claimed the partitions since this one did (it stalled past its session "
            "timeout), or the write would move them backwards; nothing of this transaction is "
            "kept, and the rebalance that follows decides who writes them"
        )


def upgrade_schema(
    engine: Engine, script_location: Path, lock_name: str, version_table: str = "alembic_version"
) -> None:
    """``alembic upgrade head`` under a PostgreSQL advisory lock.

    Several replicas starting together serialise on the lock: the first migrates, the others
    find the schema at head and do nothing. ``version_table`` is handed to the environment as
    ``config.attributes["version_table"]``: give each service its own, so two services that
    share a database (a small deployment) never mix their migration histories.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    with db_errors("schema migration"), engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": lock_name})
        config.attributes["connection"] = conn
        config.attributes["version_table"] = version_table
        command.upgrade(config, "head")
