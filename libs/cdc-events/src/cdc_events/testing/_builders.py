"""Builders of hand-made records, encoded the way Debezium's JSON converter encodes them.

Values are given as Python objects and encoded like the PostgreSQL connector's defaults
(``decimal.handling.mode=precise``, ``time.precision.mode=adaptive``): ``Decimal`` -> base64
Connect Decimal with the value's own scale, aware ``datetime`` -> ``ZonedTimestamp`` text, naive
``datetime`` -> ``MicroTimestamp``, ``date`` -> days, ``time`` -> ``MicroTime``, ``UUID`` ->
``Uuid`` text, ``bytes`` -> base64. With ``with_schema=True`` the record carries the matching
Connect schema, so the parser decodes it back to the same Python values.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import orjson

from cdc_events._decimal import encode_decimal
from cdc_events._logical import EPOCH, EPOCH_DATE
from cdc_events.testing._golden import KafkaRecord

_DEFAULT_TS_MS = 1_704_164_645_000  # 2024-01-02T03:04:05Z, a fixed time keeps ids stable


def _field(value: Any) -> tuple[Any, dict[str, Any]]:
    """(JSON value, Connect field schema) of one Python value."""
    if value is None:
        return None, {"type": "string", "optional": True}
    if isinstance(value, bool):
        return value, {"type": "boolean", "optional": True}
    if isinstance(value, int):
        return value, {"type": "int64", "optional": True}
    if isinstance(value, float):
        return value, {"type": "double", "optional": True}
    if isinstance(value, str):
        return value, {"type": "string", "optional": True}
    if isinstance(value, Decimal):
        scale = max(0, -int(value.as_tuple().exponent))
        return encode_decimal(value, scale), {
            "type": "bytes",
            "optional": True,
            "name": "org.apache.kafka.connect.data.Decimal",
            "version": 1,
            "parameters": {"scale": str(scale)},
        }
    if isinstance(value, datetime):
        if value.tzinfo is None:
            delta = value.replace(tzinfo=UTC) - EPOCH
            micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            return micros, {
                "type": "int64",
                "optional": True,
                "name": "io.debezium.time.MicroTimestamp",
                "version": 1,
            }
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return text, {
            "type": "string",
            "optional": True,
            "name": "io.debezium.time.ZonedTimestamp",
            "version": 1,
        }
    if isinstance(value, date):
        return (value - EPOCH_DATE).days, {
            "type": "int32",
            "optional": True,
            "name": "io.debezium.time.Date",
            "version": 1,
        }
    if isinstance(value, time):
        micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
        return micros + value.microsecond, {
            "type": "int64",
            "optional": True,
            "name": "io.debezium.time.MicroTime",
            "version": 1,
        }
    if isinstance(value, uuid.UUID):
        return str(value), {
            "type": "string",
            "optional": True,
            "name": "io.debezium.data.Uuid",
            "version": 1,
        }
    if isinstance(value, bytes):
        return base64.b64encode(value).decode(), {"type": "bytes", "optional": True}
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode(), {
            "type": "string",
            "optional": True,
            "name": "io.debezium.data.Json",
            "version": 1,
        }
    raise TypeError(f"no Debezium encoding for {type(value).__name__}")


def _row(row: dict[str, Any] | None, name: str) -> tuple[Any, dict[str, Any]]:
    fields = []
    out: dict[str, Any] | None = None if row is None else {}
    for column, value in (row or {}).items():
        encoded, schema = _field(value)
        fields.append({**schema, "field": column})
        if out is not None:
            out[column] = encoded
    return out, {"type": "struct", "optional": True, "name": name, "fields": fields}


def _with_schema(payload: Any, schema: dict[str, Any] | None) -> bytes:
    if schema is None:
        return orjson.dumps(payload)
    return orjson.dumps({"schema": schema, "payload": payload})


def make_change(
    op: str = "c",
    *,
    table: str = "products",
    schema: str | None = "public",
    db: str = "shop",
    connector: str = "postgresql",
    prefix: str = "dbserver1",
    key: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    lsn: int = 24_023_128,
    sequence: tuple[int | None, int | None] | str | None = "auto",
    tx_id: int = 555,
    binlog: tuple[str, int, int] = ("mysql-bin.000003", 154, 0),
    source_ts_ms: int = _DEFAULT_TS_MS,
    ts_ms: int | None = None,
    snapshot: str | bool = "false",
    with_schema: bool = False,
    with_transaction: bool = True,
    partition: int = 0,
    offset: int = 0,
) -> KafkaRecord:
    """A change event of ``table`` as the connector would write it (PostgreSQL or MySQL).

    ``key`` defaults to ``{"id": row["id"]}``. ``connector="mysql"`` writes a MySQL source
    block (``binlog`` = file, pos, row) and the topic ``<prefix>.<db>.<table>``.

    ``sequence`` (PostgreSQL's ``source.sequence``): ``"auto"`` writes ``[null,"<lsn>"]``, as
    Debezium does for a snapshot read and the first transaction after the snapshot; a pair
    ``(commit_lsn, lsn)`` is written as Debezium writes it (decimal strings, ``None`` as null),
    e.g. ``(28330144, lsn)`` for a change of a later transaction; any other text is written as
    is (a malformed sequence); ``None`` leaves the field out (Debezium before ``sequence``).
    """
    row = after if after is not None else before
    if key is None and row is not None and "id" in row:
        key = {"id": row["id"]}
    qualified = f"{db}.{table}" if connector == "mysql" else f"{schema}.{table}"
    topic = f"{prefix}.{qualified}"
    if connector == "mysql":
        source: dict[str, Any] = {
            "version": "3.6.3.Final",
            "connector": "mysql",
            "name": prefix,
            "ts_ms": source_ts_ms,
            "snapshot": snapshot,
            "db": db,
            "sequence": None,
            "table": table,
            "server_id": 223344,
            "gtid": None,
            "file": binlog[0],
            "pos": binlog[1],
            "row": binlog[2],
            "thread": 7,
            "query": None,
        }
        tx_ref = f"file={binlog[0]},pos={binlog[1]}"
    else:
        source = {
            "version": "3.6.3.Final",
            "connector": "postgresql",
            "name": prefix,
            "ts_ms": source_ts_ms,
            "snapshot": snapshot,
            "db": db,
            "sequence": _sequence(sequence, lsn),
            "schema": schema,
            "table": table,
            "txId": tx_id,
            "lsn": lsn,
            "xmin": None,
        }
        tx_ref = f"{tx_id}:{lsn}"
        if sequence is None:
            del source["sequence"]
    before_json, before_schema = _row(before, f"{prefix}.{qualified}.Value")
    after_json, after_schema = _row(after, f"{prefix}.{qualified}.Value")
    if before is not None and after is not None:
        # One Value schema for both sides, as Debezium writes it.
        merged = {
            k: after[k] if after.get(k) is not None else before.get(k) for k in {**before, **after}
        }
        _, before_schema = _row(merged, f"{prefix}.{qualified}.Value")
        after_schema = before_schema
    elif before is None:
        before_schema = after_schema
    else:
        after_schema = before_schema
    payload = {
        "before": before_json,
        "after": after_json,
        "source": source,
        "transaction": {"id": tx_ref, "total_order": 1, "data_collection_order": 1}
        if with_transaction
        else None,
        "op": op,
        "ts_ms": source_ts_ms + 120 if ts_ms is None else ts_ms,
    }
    value_schema = None
    key_bytes = None
    if with_schema:
        value_schema = {
            "type": "struct",
            "optional": False,
            "name": f"{prefix}.{qualified}.Envelope",
            "version": 2,
            "fields": [
                {**before_schema, "field": "before"},
                {**after_schema, "field": "after"},
                {
                    "type": "struct",
                    "optional": False,
                    "field": "source",
                    "name": f"io.debezium.connector.{connector}.Source",
                    "fields": [_source_field(k, v) for k, v in source.items()],
                },
                {
                    "type": "struct",
                    "optional": True,
                    "field": "transaction",
                    "name": "event.block",
                    "fields": [
                        {"type": "string", "optional": False, "field": "id"},
                        {"type": "int64", "optional": False, "field": "total_order"},
                        {"type": "int64", "optional": False, "field": "data_collection_order"},
                    ],
                },
                {"type": "string", "optional": False, "field": "op"},
                {"type": "int64", "optional": True, "field": "ts_ms"},
            ],
        }
    if key is not None:
        key_json, key_schema = _row(key, f"{prefix}.{qualified}.Key")
        key_bytes = _with_schema(
            key_json, {**key_schema, "optional": False} if with_schema else None
        )
    return KafkaRecord(topic, partition, offset, key_bytes, _with_schema(payload, value_schema))


def _sequence(sequence: tuple[int | None, int | None] | str | None, lsn: int) -> str | None:
    if sequence is None:
        return None
    if sequence == "auto":
        sequence = (None, lsn)
    if isinstance(sequence, str):
        return sequence
    return orjson.dumps([None if n is None else str(n) for n in sequence]).decode()


def _source_field(name: str, value: Any) -> dict[str, Any]:
    kind = "int64" if isinstance(value, int) and not isinstance(value, bool) else "string"
    return {"type": kind, "optional": True, "field": name}


def make_tombstone(
    key: dict[str, Any],
    *,
    table: str = "products",
    schema: str = "public",
    prefix: str = "dbserver1",
    partition: int = 0,
    offset: int = 0,
) -> KafkaRecord:
    """The null-value record Debezium writes after a delete."""
    return KafkaRecord(f"{prefix}.{schema}.{table}", partition, offset, orjson.dumps(key), None)


def make_heartbeat(
    ts_ms: int = _DEFAULT_TS_MS, *, prefix: str = "dbserver1", offset: int = 0
) -> KafkaRecord:
    """A record of ``__debezium-heartbeat.<prefix>``."""
    return KafkaRecord(
        f"__debezium-heartbeat.{prefix}",
        0,
        offset,
        orjson.dumps({"serverName": prefix}),
        orjson.dumps({"ts_ms": ts_ms}),
    )


def make_transaction(
    status: str,
    tx_id: str = "555:24023128",
    *,
    collections: dict[str, int] | None = None,
    ts_ms: int = _DEFAULT_TS_MS,
    prefix: str = "dbserver1",
    offset: int = 0,
) -> KafkaRecord:
    """A BEGIN or END record of ``<prefix>.transaction`` (END counts ``collections``)."""
    end = status == "END"
    counts = collections or {}
    payload = {
        "status": status,
        "id": tx_id,
        "event_count": sum(counts.values()) if end else None,
        "data_collections": [{"data_collection": n, "event_count": c} for n, c in counts.items()]
        if end
        else None,
        "ts_ms": ts_ms,
    }
    return KafkaRecord(
        f"{prefix}.transaction", 0, offset, orjson.dumps({"id": tx_id}), orjson.dumps(payload)
    )


def make_user_activity(
    event_type: str = "view",
    *,
    event_id: str = "evt-1",
    user_id: str = "user-1",
    timestamp: str = "2024-01-02T03:04:05.123Z",
    amount: str | float | None = None,
    **extra: Any,
) -> bytes:
    """A user-activity event as the front end sends it (``amount`` only when given)."""
    doc: dict[str, Any] = {
        "event_id": event_id,
        "user_id": user_id,
        "event_type": event_type,
        "timestamp": timestamp,
    }
    if amount is not None:
        doc["amount"] = amount
    doc.update(extra)
    return orjson.dumps(doc)
