"""``parse_record``: one Kafka record of a Debezium topic in, one typed record out.

The entry point of the library, on every consumer's hot path. It recognises the record's form
(converter with or without schemas, the change envelope, the ExtractNewRecordState row, a
tombstone, a heartbeat, a transaction boundary, a MySQL schema change), decodes rows with the
compiled schema (``_schema``) or the ``ColumnTypes`` registry, and builds the ``_model``
records (change events here, the other kinds in ``_record_kinds``). Anything else raises
``ParseError``; nothing else escapes: any other exception raised while parsing one record
(a gap in the checks) becomes ``ParseError("invalid_value")`` chained to it. Only
``MemoryError`` passes through, as the process's condition rather than the record's.

Speed: the JSON converter repeats the whole schema (several KB) in every record. Each topic's
last schema is kept as its exact bytes next to its compiled decoder; a record whose bytes start
with ``{"schema":`` + those bytes + ``,"payload":`` has that schema (a complete JSON value is
delimited by its own text), so only the payload is parsed, and no schema is walked or even
parsed again. Any other layout takes the full path, which gives the same answer. The frame
itself (bytes, JSON, the schema's text, its compiled decoders) is read by ``_converter``.
"""

from __future__ import annotations

from typing import Any, Final

from cdc_events import _event_id as eid
from cdc_events import _fields as fl
from cdc_events._column_types import ColumnTypes
from cdc_events._construct import new_change_event
from cdc_events._converter import (
    CompiledValue,
    as_bytes,
    load_json,
    schema_text,
    split_payload,
)
from cdc_events._errors import ParseError
from cdc_events._fields import MAX_TS_MS, MIN_TS_MS
from cdc_events._model import (
    OPS,
    ChangeEvent,
    Record,
    Source,
    Tombstone,
    table_of_topic,
)
from cdc_events._record_kinds import (
    HEARTBEAT_TOPIC,
    RowFn,
    boundary,
    heartbeat,
    schema_change,
    unwrapped_event,
)
from cdc_events._schema import (
    RowDecoder,
    compile_key,
    passthrough_row,
    registry_row_decoder,
    schema_fingerprint,
)
from cdc_events._view import ChangeView, parse_view

DEFAULT_MAX_BYTES: Final = 1 << 20  # 1 MiB: Kafka's default max.message.bytes is ~1 MB.
# Bounds on the caches: a consumer sees a few hundred topics and schema versions; these only
# stop a pathological stream (a new schema per record) from growing memory without end.
_MAX_TOPICS: Final = 4096
_MAX_SCHEMAS: Final = 1024


class Parser:
    """Parses records; holds the per-schema decoder cache and the configuration.

    ``column_types`` decodes schemaless values (see ``ColumnTypes``); ``max_bytes`` bounds the
    size of a key or value (larger ones raise ``ParseError("too_large")``). One parser per
    consumer process; safe to share between threads (the caches only ever gain entries that
    are equivalent to the ones they replace).
    """

    __slots__ = ("_compiled", "_keys", "_rows", "_values", "column_types", "max_bytes")

    def __init__(
        self, column_types: ColumnTypes | None = None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.column_types = column_types
        self.max_bytes = max_bytes
        self._values: dict[str, tuple[bytes, CompiledValue]] = {}
        self._keys: dict[str, tuple[bytes, RowDecoder | None]] = {}
        self._compiled: dict[tuple[str, int], CompiledValue] = {}
        self._rows: dict[tuple[str | None, str | None, str | None], RowFn] = {}

    # -- entry ------------------------------------------------------------------------------

    def parse_record(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: fl.Headers | None = None,
    ) -> Record:
        """One record of ``topic`` as a ``Record``; raises ``ParseError`` (see ``parse_record``)."""
        # A try costs nothing in CPython 3.11 until something is raised.
        try:
            return self._parse(topic, partition, offset, key, value, headers)
        except (ParseError, MemoryError):
            raise
        except Exception as exc:  # the contract: only ParseError escapes
            raise ParseError.unexpected(exc, f"{topic}[{partition}]@{offset}") from exc

    def _parse(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: fl.Headers | None,
    ) -> Record:
        max_bytes = self.max_bytes
        if key is not None and (type(key) is not bytes or len(key) > max_bytes):
            key = as_bytes(key, "key", max_bytes)
        if type(value) is not bytes or len(value) > max_bytes:
            value = as_bytes(value, "value", max_bytes)
        if value is None:
            return Tombstone(self._key(topic, key, None)[1], topic, partition, offset)
        payload, compiled = self._value(topic, value)
        if payload is None:  # {"schema":null,"payload":null} or JSON null: a tombstone
            return Tombstone(self._key(topic, key, None)[1], topic, partition, offset)
        if type(payload) is not dict:
            raise ParseError(
                "not_object", f"value payload is a JSON {type(payload).__name__}, not an object"
            )
        if (
            "__op" in payload
            or "__deleted" in payload
            or (headers and fl.header(headers, "__op") is not None)
        ):
            return unwrapped_event(
                payload,
                None if compiled is None else compiled.row,
                topic,
                partition,
                offset,
                headers,
                lambda source: self._key(topic, key, source),
                self._schemaless,
            )
        if "op" in payload:
            return self._change(payload, compiled, topic, partition, offset, key)
        if "status" in payload and "id" in payload:
            return boundary(payload, topic, partition, offset)
        if topic.startswith(HEARTBEAT_TOPIC) or payload.keys() == {"ts_ms"}:
            return heartbeat(
                payload, topic, partition, offset, lambda: self._key(topic, key, None)[1]
            )
        if "ddl" in payload:
            return schema_change(payload, topic, partition, offset)
        raise ParseError(
            "missing_field",
            "no 'op' field: not a Debezium change envelope, heartbeat, transaction boundary, "
            "schema change or ExtractNewRecordState row (add.fields=op or __deleted)",
        )

    # -- values and keys: cached schemas -----------------------------------------------------

    def _value(self, topic: str, value: bytes) -> tuple[Any, CompiledValue | None]:
        entry = self._values.get(topic)
        if entry is not None:
            hit = split_payload(value, entry[0])
            if hit is not None:
                return hit[0], entry[1]
        doc = load_json(value, "value")
        if doc is None:
            return None, None
        if type(doc) is not dict:
            raise ParseError("not_object", f"value is a JSON {type(doc).__name__}, not an object")
        if len(doc) != 2 or "schema" not in doc or "payload" not in doc:
            return doc, None  # the converter without schemas: the bare envelope
        schema, payload = doc["schema"], doc["payload"]
        if schema is None or payload is None:
            return payload, None
        compiled = self._compile(schema, payload, topic)
        text = schema_text(value, schema)
        if text is not None:
            if len(self._values) >= _MAX_TOPICS:
                self._values.clear()
            self._values[topic] = (text, compiled)
        return payload, compiled

    def _compile(self, schema: Any, payload: Any, topic: str) -> CompiledValue:
        overrides = None
        if self.column_types is not None and isinstance(payload, dict):
            schema_name, table, db = fl.table_of(payload, topic)
            overrides = self.column_types.for_table(schema_name, table, db)
        cache_key = (schema_fingerprint(schema), id(overrides))
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            if len(self._compiled) >= _MAX_SCHEMAS:
                self._compiled.clear()
            compiled = self._compiled[cache_key] = CompiledValue(schema, overrides)
        return compiled

    def _key(
        self, topic: str, key: bytes | None, source: Source | None
    ) -> tuple[Any, dict[str, Any] | None]:
        """(raw key payload, decoded key)."""
        if source is None:
            return self._key_of(topic, key, None, None, None, by_topic=True)
        return self._key_of(topic, key, source.schema, source.table, source.db)

    def _key_of(
        self,
        topic: str,
        key: bytes | None,
        schema: str | None,
        table: str | None,
        db: str | None,
        *,
        by_topic: bool = False,
    ) -> tuple[Any, dict[str, Any] | None]:
        """(raw key payload, decoded key); a schemaless key is decoded with the registry's
        entry for ``schema.table`` (``by_topic``: the table named by the topic)."""
        if key is None:
            return None, None
        entry = self._keys.get(topic)
        decoder: RowDecoder | None
        if entry is not None and (hit := split_payload(key, entry[0])) is not None:
            raw, decoder = hit[0], entry[1]
        else:
            doc = load_json(key, "key")
            decoder = None
            if type(doc) is dict and len(doc) == 2 and "schema" in doc and "payload" in doc:
                raw = doc["payload"]
                key_schema = doc["schema"]
                if isinstance(key_schema, dict) and key_schema.get("type") == "struct":
                    decoder = compile_key(key_schema)
                    text = schema_text(key, key_schema)
                    if text is not None:
                        if len(self._keys) >= _MAX_TOPICS:
                            self._keys.clear()
                        self._keys[topic] = (text, decoder)
            else:
                raw = doc
        if raw is None:
            return None, None
        if type(raw) is not dict:
            raise ParseError("not_object", f"key is a JSON {type(raw).__name__}, not an object")
        if decoder is not None:
            return raw, decoder.decode(raw, "key")[0]
        if by_topic:
            return raw, self._schemaless(None, table_of_topic(topic), None)(raw, "key")[0]
        return raw, self._schemaless(schema, table, db)(raw, "key")[0]

    def _schemaless(self, schema: str | None, table: str | None, db: str | None) -> RowFn:
        if self.column_types is None:
            return passthrough_row
        cache_key = (schema, table, db)
        fn = self._rows.get(cache_key)
        if fn is None:
            overrides = self.column_types.for_table(schema, table, db)
            fn = passthrough_row if overrides is None else registry_row_decoder(overrides)
            if len(self._rows) >= _MAX_TOPICS:
                self._rows.clear()
            self._rows[cache_key] = fn
        return fn

    def parse_view(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: fl.Headers | None = None,
    ) -> ChangeView | Record:
        """``parse_record``, with a change event as a flat ``ChangeView`` (see ``_view``).

        Same records, same checks, same ``ParseError``s (the same last line of defence: any
        record the view's path does not take, or fails on, goes through ``parse_record``);
        tombstones, heartbeats, transaction boundaries and schema changes come back as
        ``parse_record`` returns them.
        """
        return parse_view(self, topic, partition, offset, key, value, headers)

    # -- record kinds -----------------------------------------------------------------------

    def _change(
        self,
        payload: dict[str, Any],
        compiled: CompiledValue | None,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
    ) -> ChangeEvent:
        op = payload["op"]
        if type(op) is not str or op not in OPS:
            raise ParseError("unknown_op", f"op {op!r:.40} is not one of c, u, d, r, t, m")
        src = payload.get("source")
        if src is None:
            raise ParseError("missing_field", "source: a change event without its source block")
        source = fl.read_source(src)
        raw_key, decoded_key = self._key(topic, key, source)
        before = after = None
        unchanged: list[str] = []
        if op == "m":
            after = fl.read_message(payload.get("message"))
        elif op != "t":
            if compiled is not None:
                decode_before, decode_after = compiled.envelope_rows()
            else:
                decode_before = decode_after = self._schemaless(
                    source.schema, source.table, source.db
                )
            raw_before, raw_after = payload.get("before"), payload.get("after")
            if raw_before is not None:
                before, gone = decode_before(raw_before, "before")
                if gone:
                    unchanged.extend(gone)
            if raw_after is not None:
                after, gone = decode_after(raw_after, "after")
                if gone:
                    unchanged.extend(n for n in gone if n not in unchanged)
            if after is None and op != "d":
                raise ParseError("missing_field", f"after: op {op!r} without the new row")
            if op == "d" and before is None and "before" not in payload:
                raise ParseError("missing_field", "before: a delete without its before field")
        ts_ms = payload.get("ts_ms")
        if ts_ms is not None and (type(ts_ms) is not int or not MIN_TS_MS <= ts_ms <= MAX_TS_MS):
            ts_ms = fl.ts_ms_or_none(ts_ms, "ts_ms")
        transaction = payload.get("transaction")
        return new_change_event(
            op,
            source,
            decoded_key,
            before,
            after,
            ts_ms,
            None if transaction is None else fl.read_transaction(transaction),
            topic,
            partition,
            offset,
            eid.change_event_id(
                source.connector,
                source.db,
                source.schema,
                source.table,
                op,
                eid.position(src),
                eid.canonical_key(raw_key),
            ),
            tuple(unchanged),
            op == "d" and fl.key_only(before, decoded_key, source),
        )


_DEFAULT: Final = Parser()


def parse_record(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: fl.Headers | None = None,
) -> Record:
    """Parse one Kafka record with the default parser (no registry, 1 MiB limit).

    Returns a ``ChangeEvent``, ``Tombstone``, ``Heartbeat``, ``TransactionBoundary`` or
    ``SchemaChange``; raises ``ParseError`` for anything malformed. Use ``Parser(...)`` for a
    ``ColumnTypes`` registry or another size limit.
    """
    return _DEFAULT.parse_record(topic, partition, offset, key, value, headers)
