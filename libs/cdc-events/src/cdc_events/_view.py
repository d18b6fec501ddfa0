"""``Parser.parse_view``: a change event as a flat ``ChangeView``, for consumers that read many
changes and never need the ``Source`` object.

``parse_record`` builds a ``ChangeEvent`` with its ``Source`` and ``TransactionInfo`` for every
change. A consumer that folds each change into a few numbers (the analytics flusher) reads the
op, the table, the commit time, the key, the rows and the id, and the objects around them cost
it about as much as the JSON and the rows together. ``parse_view`` reads those fields straight
from the payload for the common record (a PostgreSQL change envelope, every field of its usual
JSON type, no TOAST placeholder, no ``__op`` header), with the same decoders, the same
checks and the same ``event_id`` as ``parse_record``. Anything else goes through
``parse_record`` and ``ChangeView.of`` (or comes back as the record ``parse_record`` returns, for
tombstones, heartbeats, transaction boundaries and schema changes), so both entry points agree
on every record, malformed ones included: a unit test holds them to it over the golden records
and fuzzed mutations of them.

The view holds everything a ``ChangeEvent`` does but the source's ``name`` and ``version``
(the LSN, the commit LSN of ``source.sequence``, the transaction, the snapshot marker and, from
the full path, the MySQL binlog position too), so a consumer that stores whole changes (the
event store) can read only views, and ``source_version`` takes a view as it takes an event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NamedTuple

from cdc_events import _event_id as eid
from cdc_events import _fields as fl
from cdc_events._fields import MAX_TS_MS, MIN_TS_MS
from cdc_events._model import (
    BinlogPosition,
    ChangeEvent,
    Record,
    TransactionInfo,
    normalise,
    real_before,
    tx_id_of,
)

if TYPE_CHECKING:
    from cdc_events._parser import Parser

_ROW_OPS: Final = frozenset({"c", "u", "r", "d"})


class ChangeView(NamedTuple):
    """A change event, flat: ``ChangeEvent`` with the fields of its ``Source`` (but ``name`` and
    ``version``) beside its own. Every field means what it means on
    ``ChangeEvent``; ``source_ts_ms`` is ``source.ts_ms``."""

    op: str
    connector: str | None
    db: str | None
    schema: str | None
    table: str | None
    source_ts_ms: int | None
    ts_ms: int | None
    key: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    topic: str
    partition: int
    offset: int
    event_id: str
    unchanged_columns: tuple[str, ...]
    before_is_key_only: bool
    lsn: int | None
    tx_id: str | None
    """``ChangeEvent.tx_id``: the source's ``txId`` (as text), else from the transaction block."""
    snapshot: str | None
    transaction: TransactionInfo | None
    binlog: BinlogPosition | None
    commit_lsn: int | None = None
    """``Source.commit_lsn``: the first element of PostgreSQL's ``source.sequence``."""

    @property
    def row(self) -> dict[str, Any] | None:
        """The row's state after the change, or before it for a delete."""
        return self.after if self.after is not None else self.before

    @classmethod
    def of(cls, event: ChangeEvent) -> ChangeView:
        src = event.source
        return cls(
            event.op,
            src.connector,
            src.db,
            src.schema,
            src.table,
            src.ts_ms,
            event.ts_ms,
            event.key,
            event.before,
            event.after,
            event.topic,
            event.partition,
            event.offset,
            event.event_id,
            event.unchanged_columns,
            event.before_is_key_only,
            src.lsn,
            event.tx_id,
            src.snapshot,
            event.transaction,
            src.binlog,
            src.commit_lsn,
        )

    def normalised_rows(self) -> tuple[Any, Any, Any]:
        """Key, before and after in the normalised form of ``ChangeEvent.to_dict()``
        (``UNCHANGED`` columns and the placeholders of a key-only ``before`` left out)."""
        before = real_before(self.before, self.key, self.before_is_key_only)
        return normalise(self.key), normalise(before), normalise(self.after)

    @property
    def is_snapshot(self) -> bool:
        """``Source.is_snapshot``: a read of the initial (or an incremental) snapshot."""
        return self.snapshot is not None and self.snapshot != "false"


def parse_view(
    parser: Parser,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: fl.Headers | None,
) -> ChangeView | Record:
    try:
        view = _common(parser, topic, partition, offset, key, value, headers)
    except Exception:  # the full path gives the answer, or the ParseError, for this record
        view = None
    if view is not None:
        return view
    record = parser.parse_record(topic, partition, offset, key, value, headers)
    return ChangeView.of(record) if type(record) is ChangeEvent else record


def _common(
    parser: Parser,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: fl.Headers | None,
) -> ChangeView | None:
    """The view of a common change record, or None: not common, let ``parse_record`` decide."""
    max_bytes = parser.max_bytes
    if type(value) is not bytes or len(value) > max_bytes:
        return None
    if key is not None and (type(key) is not bytes or len(key) > max_bytes):
        return None
    if headers and fl.header(headers, "__op") is not None:
        return None
    payload, compiled = parser._value(topic, value)
    if type(payload) is not dict or "__op" in payload or "__deleted" in payload:
        return None
    op = payload.get("op")
    if op not in _ROW_OPS:
        return None
    src = payload.get("source")
    if type(src) is not dict:
        return None
    fields = fl.common_source(src)
    if fields is None:
        return None
    connector, _, db, schema, table, _, snapshot, ts_ms, lsn, tx_id, sequence = fields
    if connector != "postgresql":
        return None
    commit_lsn = fl.read_sequence(sequence)
    schema = schema or None
    table = table or None
    block = payload.get("transaction")
    transaction = None
    if block is not None:
        if type(block) is not dict:
            return None
        tx = block.get("id")
        total = block.get("total_order")
        per_table = block.get("data_collection_order")
        if (
            type(tx) is not str
            or type(total) not in fl.INT_TYPES
            or type(per_table) not in fl.INT_TYPES
        ):
            return None
        transaction = TransactionInfo(tx, total, per_table)
    envelope_ts = payload.get("ts_ms")
    if envelope_ts is not None and (
        type(envelope_ts) is not int or not MIN_TS_MS <= envelope_ts <= MAX_TS_MS
    ):
        return None
    raw_key, decoded_key = parser._key_of(topic, key, schema, table, db)
    if compiled is not None:
        decode_before, decode_after = compiled.envelope_rows()
    else:
        decode_before = decode_after = parser._schemaless(schema, table, db)
    raw_before, raw_after = payload.get("before"), payload.get("after")
    before = after = None
    if raw_before is not None:
        before, gone = decode_before(raw_before, "before")
        if gone:
            return None
    if raw_after is not None:
        after, gone = decode_after(raw_after, "after")
        if gone:
            return None
    if after is None and op != "d":
        return None
    if op == "d" and before is None and "before" not in payload:
        return None
    return ChangeView(
        op,
        connector,
        db,
        schema,
        table,
        ts_ms,
        envelope_ts,
        decoded_key,
        before,
        after,
        topic,
        partition,
        offset,
        eid.change_event_id(
            connector,
            db,
            schema,
            table,
            op,
            f"pg:{lsn}:{tx_id}",  # eid.position of a PostgreSQL block
            eid.canonical_key(raw_key),
        ),
        (),
        op == "d" and fl.key_only_of(before, decoded_key, connector),
        lsn,
        _tx_id(tx_id, transaction),
        snapshot,
        transaction,
        None,
        commit_lsn,
    )


def _tx_id(source_tx_id: int | str | None, transaction: TransactionInfo | None) -> str | None:
    """``ChangeEvent.tx_id`` of a common record: the source's, else the transaction block's."""
    if source_tx_id is not None:
        return str(source_tx_id)
    return None if transaction is None else tx_id_of(transaction.id)
