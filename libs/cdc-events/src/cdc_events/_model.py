"""The parsed records: what ``parse_record`` returns, and their normalised JSON form.

The top of the library's data model, shared by every consumer. Frozen ``__slots__`` dataclasses
(cheap to build, immutable, no per-instance dict). ``to_dict()`` is the normalised JSON form used
by the CLI and the event store; every record kind produces the same keys (``NORMALISED_KEYS``),
``None`` where a key does not apply, so one table or one ``jq`` filter fits all of them:
decimals become exact strings keeping their scale (``"12.50"``), timestamps ISO-8601 UTC
(``"2024-01-02T03:04:05.123456Z"``), dates ``YYYY-MM-DD``, UUIDs their text, bytes base64.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Final, Literal


class _Unchanged:
    """A column Debezium could not see (a TOASTed value not touched by the update)."""

    __slots__ = ()
    _instance: _Unchanged | None = None

    def __new__(cls) -> _Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"

    def __reduce__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()
"""Stands in for a column whose value did not change and was not sent (keep the old value)."""

Op = Literal["c", "u", "d", "r", "t", "m"]
OPS: Final = frozenset({"c", "u", "d", "r", "t", "m"})

NORMALISED_KEYS: Final = (
    "kind",
    "op",
    "connector",
    "db",
    "schema",
    "table",
    "key",
    "before",
    "after",
    "source_ts_ms",
    "ts_ms",
    "lsn",
    "commit_lsn",
    "tx_id",
    "snapshot",
    "transaction",
    "binlog",
    "unchanged_columns",
    "event_id",
    "topic",
    "partition",
    "offset",
)


@dataclass(frozen=True, slots=True)
class BinlogPosition:
    """Where a MySQL change sits in the binlog."""

    file: str
    pos: int
    row: int = 0
    server_id: int | None = None
    gtid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "pos": self.pos,
            "row": self.row,
            "server_id": self.server_id,
            "gtid": self.gtid,
        }


@dataclass(frozen=True, slots=True)
class Source:
    """The ``source`` block: which connector saw the change, where, and when."""

    connector: str | None
    name: str | None
    db: str | None
    schema: str | None
    table: str | None
    ts_ms: int | None
    snapshot: str | None = None
    """``"false"``, ``"true"``, ``"first"``, ``"last"``, ``"incremental"``... or ``None``."""
    lsn: int | None = None
    tx_id: str | None = None
    """PostgreSQL ``txId`` (as text) or MySQL GTID."""
    binlog: BinlogPosition | None = None
    version: str | None = None
    commit_lsn: int | None = None
    """PostgreSQL: the first element of ``source.sequence``, the commit LSN of the transaction
    Debezium processed before this change's (the same for every change of a transaction, growing
    in commit order); ``None`` for snapshot reads, the first transaction after the snapshot, and
    without a ``sequence``. See ``source_version``."""

    @property
    def is_snapshot(self) -> bool:
        return self.snapshot is not None and self.snapshot != "false"


@dataclass(frozen=True, slots=True)
class TransactionInfo:
    """The ``transaction`` block of a change (``provide.transaction.metadata=true``)."""

    id: str
    total_order: int | None
    data_collection_order: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "total_order": self.total_order,
            "data_collection_order": self.data_collection_order,
        }


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One row change (``c``/``u``/``d``/``r``), a truncate (``t``) or a logical message (``m``).

    ``before``/``after`` hold decoded values; a column Debezium could not see holds ``UNCHANGED``
    and is listed in ``unchanged_columns``. For ``m``, ``after`` is ``{"prefix", "content"}``.
    ``before_is_key_only``: a delete under the default replica identity, where only the key
    columns of ``before`` are real and Debezium filled the others with placeholders.
    """

    op: str
    source: Source
    key: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ts_ms: int | None
    transaction: TransactionInfo | None
    topic: str
    partition: int
    offset: int
    event_id: str
    unchanged_columns: tuple[str, ...] = ()
    before_is_key_only: bool = False

    @property
    def table(self) -> str | None:
        return self.source.table

    @property
    def tx_id(self) -> str | None:
        """The id correlating this change with its transaction's BEGIN and END."""
        if self.source.tx_id is not None:
            return self.source.tx_id
        return None if self.transaction is None else tx_id_of(self.transaction.id)

    @property
    def row(self) -> dict[str, Any] | None:
        """The row's state after the change, or before it for a delete."""
        return self.after if self.after is not None else self.before

    def to_dict(self) -> dict[str, Any]:
        src = self.source
        before = real_before(self.before, self.key, self.before_is_key_only)
        return {
            "kind": "change",
            "op": self.op,
            "connector": src.connector,
            "db": src.db,
            "schema": src.schema,
            "table": src.table,
            "key": normalise(self.key),
            "before": normalise(before),
            "after": normalise(self.after),
            "source_ts_ms": src.ts_ms,
            "ts_ms": self.ts_ms,
            "lsn": src.lsn,
            "commit_lsn": src.commit_lsn,
            "tx_id": self.tx_id,
            "snapshot": src.snapshot,
            "transaction": None if self.transaction is None else self.transaction.to_dict(),
            "binlog": None if src.binlog is None else src.binlog.to_dict(),
            "unchanged_columns": list(self.unchanged_columns),
            "event_id": self.event_id,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
        }


def _empty(kind: str, topic: str, partition: int, offset: int) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(NORMALISED_KEYS)
    out.update(kind=kind, topic=topic, partition=partition, offset=offset, unchanged_columns=[])
    return out


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A null value after a delete: log compaction may drop every earlier record of ``key``."""

    key: dict[str, Any] | None
    topic: str
    partition: int
    offset: int

    @property
    def table(self) -> str | None:
        return table_of_topic(self.topic)

    def to_dict(self) -> dict[str, Any]:
        out = _empty("tombstone", self.topic, self.partition, self.offset)
        out["key"] = normalise(self.key)
        out["table"] = self.table
        return out


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A record on ``__debezium-heartbeat.<prefix>``: the connector is alive at ``ts_ms``."""

    server_name: str | None
    ts_ms: int
    topic: str
    partition: int
    offset: int

    def to_dict(self) -> dict[str, Any]:
        out = _empty("heartbeat", self.topic, self.partition, self.offset)
        out["ts_ms"] = self.ts_ms
        out["key"] = None if self.server_name is None else {"serverName": self.server_name}
        return out


@dataclass(frozen=True, slots=True)
class TransactionBoundary:
    """BEGIN or END of a source transaction, on ``<prefix>.transaction``.

    ``id`` is Debezium's raw id (PostgreSQL: ``txId:lsn``, where the LSN part differs between
    BEGIN, the events and END); correlate on ``tx_id`` (PostgreSQL: the ``txId`` part).
    ``data_collections`` (END only) maps ``schema.table`` to its number of events.
    """

    status: Literal["BEGIN", "END"]
    id: str
    tx_id: str
    ts_ms: int | None
    event_count: int | None
    data_collections: tuple[tuple[str, int], ...]
    topic: str
    partition: int
    offset: int
    event_id: str

    def to_dict(self) -> dict[str, Any]:
        out = _empty("transaction_boundary", self.topic, self.partition, self.offset)
        out.update(
            ts_ms=self.ts_ms,
            tx_id=self.tx_id,
            event_id=self.event_id,
            transaction={
                "status": self.status,
                "id": self.id,
                "event_count": self.event_count,
                "data_collections": dict(self.data_collections)
                if self.event_count is not None
                else None,
            },
        )
        return out


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """A DDL statement on the MySQL schema-change topic ``<prefix>``."""

    source: Source
    db: str | None
    schema: str | None
    ddl: str
    table_changes: tuple[Any, ...]
    ts_ms: int | None
    topic: str
    partition: int
    offset: int
    event_id: str

    def to_dict(self) -> dict[str, Any]:
        out = _empty("schema_change", self.topic, self.partition, self.offset)
        src = self.source
        out.update(
            connector=src.connector,
            db=self.db,
            schema=self.schema,
            table=src.table or None,
            after={"ddl": self.ddl, "table_changes": normalise(list(self.table_changes))},
            source_ts_ms=src.ts_ms,
            ts_ms=self.ts_ms,
            snapshot=src.snapshot,
            binlog=None if src.binlog is None else src.binlog.to_dict(),
            tx_id=src.tx_id,
            event_id=self.event_id,
        )
        return out


Record = ChangeEvent | Tombstone | Heartbeat | TransactionBoundary | SchemaChange


def tx_id_of(raw_id: str) -> str:
    """``"757:28329784"`` (PostgreSQL ``txId:lsn``) -> ``"757"``; other ids unchanged."""
    head, sep, tail = raw_id.partition(":")
    if sep and head.isdigit() and tail.isdigit():
        return head
    return raw_id


def table_of_topic(topic: str) -> str | None:
    """``dbserver1.public.orders`` -> ``orders`` (the default topic naming)."""
    parts = topic.split(".")
    return parts[-1] if len(parts) >= 3 else None


def _iso_utc(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    text = value.replace(tzinfo=None).isoformat()
    return text + "Z"


def real_before(
    before: dict[str, Any] | None, key: dict[str, Any] | None, key_only: bool
) -> dict[str, Any] | None:
    """``before`` as stored: of a key-only ``before`` (a delete under the default replica
    identity) only the key columns, the others being Debezium's placeholders, not data."""
    if before is not None and key_only and key is not None:
        return {k: v for k, v in before.items() if k in key}
    return before


def normalise(value: Any) -> Any:
    """A decoded value in its JSON form (``UNCHANGED`` columns are left out of rows).

    Public: consumers put database values (e.g. a row read back from PostgreSQL) in the same
    form to compare them with events.
    """
    if value is None or type(value) in (str, int, bool, float):
        return value
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items() if v is not UNCHANGED}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return _iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value
