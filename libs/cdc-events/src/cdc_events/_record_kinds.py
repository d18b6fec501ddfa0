"""The record kinds other than the change envelope: ExtractNewRecordState rows, transaction
boundaries, heartbeats and schema changes.

Helpers of ``_parser`` (which recognises the kind and owns the key and schema caches, passed in
as callables); each builds one ``_model`` record from a decoded payload and raises
``ParseError`` naming the field that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from cdc_events import _event_id as eid
from cdc_events import _fields as fl
from cdc_events._errors import ParseError
from cdc_events._model import (
    OPS,
    ChangeEvent,
    Heartbeat,
    SchemaChange,
    Source,
    TransactionBoundary,
    tx_id_of,
)

RowFn = Callable[[Any, str], tuple[dict[str, Any], list[str] | None]]
HEARTBEAT_TOPIC: Final = "__debezium-heartbeat"


def unwrapped_event(
    payload: dict[str, Any],
    compiled_row: Callable[[], RowFn] | None,
    topic: str,
    partition: int,
    offset: int,
    headers: fl.Headers | None,
    key_of: Callable[[Source], tuple[Any, dict[str, Any] | None]],
    schemaless: Callable[[str | None, str | None, str | None], RowFn],
) -> ChangeEvent:
    """An ExtractNewRecordState row (``__op``/``__deleted`` and the ``__`` metadata fields or
    headers) as a change event. ``compiled_row`` gives the value schema's row decoder (None:
    schemaless), ``key_of`` decodes the record key for a source, ``schemaless`` gives the
    registry decoder of a table."""
    meta: dict[str, Any] = {}
    for name, raw in fl.header_items(headers):
        if name.startswith("__"):
            meta[name[2:]] = fl.header_value(raw)
    meta.update((k[2:], v) for k, v in payload.items() if k.startswith("__"))
    deleted = meta.get("deleted")
    if deleted not in (None, "true", "false", True, False):
        raise ParseError(
            "type_mismatch", f'__deleted: expected "true" or "false", got {deleted!r:.40}'
        )
    is_deleted = deleted in ("true", True)
    op = "d" if is_deleted else meta.get("op")
    if op is None:
        raise ParseError(
            "missing_field",
            "__op: an ExtractNewRecordState row without its operation; configure the "
            "transform with add.fields=op",
        )
    if type(op) is not str or op not in OPS:
        raise ParseError("unknown_op", f"__op {op!r:.40} is not one of c, u, d, r, t, m")

    def pick(*names: str) -> Any:
        for name in names:
            if meta.get(name) is not None:
                return meta[name]
        return None

    topic_schema, topic_table = fl.topic_parts(topic)
    connector = fl.str_or_none(pick("connector", "source_connector"), "__connector")
    source = Source(
        connector=connector,
        name=fl.str_or_none(pick("name", "source_name"), "__name"),
        db=fl.str_or_none(pick("db", "source_db"), "__db"),
        schema=fl.str_or_none(pick("schema", "source_schema"), "__schema") or topic_schema,
        table=fl.str_or_none(pick("table", "source_table"), "__table") or topic_table,
        ts_ms=fl.ts_ms_or_none(pick("source_ts_ms"), "__source_ts_ms"),
        snapshot=fl.read_snapshot(pick("snapshot", "source_snapshot")),
        lsn=fl.int_or_none(pick("lsn", "source_lsn"), "__lsn"),
        tx_id=fl.read_txid(pick("txId", "source_txId", "gtid", "source_gtid")),
        binlog=fl.read_binlog({k.removeprefix("source_"): v for k, v in meta.items()})
        if pick("file", "source_file") is not None
        else None,
        commit_lsn=fl.read_sequence(pick("sequence", "source_sequence"))
        if connector in fl.SEQUENCE_CONNECTORS
        else None,
    )
    raw_key, decoded_key = key_of(source)
    if compiled_row is not None:
        row, gone = compiled_row()(payload, "row")
    else:
        row, gone = schemaless(source.schema, source.table, source.db)(payload, "row")
    row = {k: v for k, v in row.items() if not k.startswith("__")}
    unchanged = tuple(n for n in gone or () if not n.startswith("__"))
    if source.binlog is not None:
        b = source.binlog
        pos = f"mysql:{b.file}:{b.pos}:{b.row}"
    elif source.lsn is not None:
        pos = f"pg:{source.lsn}:{source.tx_id}"
    else:
        pos = f"ts:{source.ts_ms}"
    return ChangeEvent(
        op=op,
        source=source,
        key=decoded_key,
        before=row if op == "d" else None,
        after=None if op == "d" else row,
        ts_ms=fl.ts_ms_or_none(pick("ts_ms"), "__ts_ms"),
        transaction=None,
        topic=topic,
        partition=partition,
        offset=offset,
        event_id=eid.change_event_id(
            source.connector,
            source.db,
            source.schema,
            source.table,
            op,
            pos,
            eid.canonical_key(raw_key),
        ),
        unchanged_columns=unchanged,
        before_is_key_only=op == "d" and fl.key_only(row, decoded_key, source),
    )


def boundary(
    payload: dict[str, Any], topic: str, partition: int, offset: int
) -> TransactionBoundary:
    """A transaction BEGIN or END record."""
    status = payload["status"]
    if status not in ("BEGIN", "END"):
        raise ParseError("unknown_op", f"transaction status {status!r:.40} is not BEGIN or END")
    raw_id = payload["id"]
    if type(raw_id) is not str or not raw_id:
        raise ParseError("type_mismatch", f"id: expected a transaction id, got {raw_id!r:.40}")
    collections: list[tuple[str, int]] = []
    raw_collections = payload.get("data_collections")
    if raw_collections is not None:
        if type(raw_collections) is not list:
            raise ParseError("type_mismatch", "data_collections: expected a list")
        for item in raw_collections:
            if type(item) is not dict:
                raise ParseError("type_mismatch", "data_collections: expected objects")
            name = item.get("data_collection")
            count = item.get("event_count")
            if type(name) is not str or type(count) is not int:
                raise ParseError(
                    "type_mismatch",
                    f"data_collections: expected {{data_collection, event_count}}, got "
                    f"{item!r:.80}",
                )
            collections.append((name, count))
    return TransactionBoundary(
        status=status,
        id=raw_id,
        tx_id=tx_id_of(raw_id),
        ts_ms=fl.ts_ms_or_none(payload.get("ts_ms"), "ts_ms"),
        event_count=fl.opt_int(payload, "event_count", "event_count"),
        data_collections=tuple(collections),
        topic=topic,
        partition=partition,
        offset=offset,
        event_id=eid.other_event_id("transaction", topic, status, raw_id),
    )


def heartbeat(
    payload: dict[str, Any],
    topic: str,
    partition: int,
    offset: int,
    key_of: Callable[[], dict[str, Any] | None],
) -> Heartbeat:
    """A heartbeat record; ``key_of`` decodes its key (``serverName``)."""
    ts_ms = payload.get("ts_ms")
    if ts_ms is None:
        raise ParseError("missing_field", "ts_ms: a heartbeat without its timestamp")
    if type(ts_ms) is not int:
        raise ParseError("type_mismatch", f"ts_ms: expected an integer, got {ts_ms!r:.40}")
    fl.ts_ms_or_none(ts_ms, "ts_ms")  # within years 1-9999
    decoded = key_of()
    server = decoded.get("serverName") if decoded else None
    if server is None and topic.startswith(HEARTBEAT_TOPIC + "."):
        server = topic[len(HEARTBEAT_TOPIC) + 1 :]
    return Heartbeat(
        server_name=fl.str_or_none(server, "serverName"),
        ts_ms=ts_ms,
        topic=topic,
        partition=partition,
        offset=offset,
    )


def schema_change(payload: dict[str, Any], topic: str, partition: int, offset: int) -> SchemaChange:
    """A schema change record (MySQL and other connectors with a schema history)."""
    ddl = payload["ddl"]
    if type(ddl) is not str:
        raise ParseError("type_mismatch", f"ddl: expected a string, got {ddl!r:.40}")
    src = payload.get("source")
    source = fl.read_source(src) if src is not None else Source(None, None, None, None, None, None)
    changes = payload.get("tableChanges")
    if changes is not None and type(changes) is not list:
        raise ParseError("type_mismatch", "tableChanges: expected a list")
    db = fl.str_or_none(payload.get("databaseName"), "databaseName")
    return SchemaChange(
        source=source,
        db=db if db is not None else source.db,
        schema=fl.str_or_none(payload.get("schemaName"), "schemaName"),
        ddl=ddl,
        table_changes=tuple(changes or ()),
        ts_ms=fl.ts_ms_or_none(payload.get("ts_ms"), "ts_ms"),
        topic=topic,
        partition=partition,
        offset=offset,
        event_id=eid.other_event_id(
            "schema_change",
            source.connector or "",
            db or "",
            eid.position(src) if isinstance(src, dict) else "",
            ddl,
        ),
    )
