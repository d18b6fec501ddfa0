"""Positional constructors of the two records ``parse_record`` builds for every change event.

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``,
looked up anew per field; with twelve fields in ``Source`` and thirteen in ``ChangeEvent`` that
is a visible share of parsing one event. These build the same objects (every slot set, nothing
else, as the generated ``__init__`` does) through the slots' own descriptors. Only ``_parser``
and ``_fields`` use them; everyone else constructs records the ordinary way.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from cdc_events._model import BinlogPosition, ChangeEvent, Source, TransactionInfo

_new = object.__new__


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    # The constructors below list the fields by hand; fail at import if the class changed.
    declared = tuple(f.name for f in fields(cls))
    if declared != names:
        raise RuntimeError(f"{cls.__name__} fields changed: {declared}; update _construct")
    return tuple(cls.__dict__[name].__set__ for name in names)


(
    _s_connector,
    _s_name,
    _s_db,
    _s_schema,
    _s_table,
    _s_ts_ms,
    _s_snapshot,
    _s_lsn,
    _s_tx_id,
    _s_binlog,
    _s_version,
    _s_commit_lsn,
) = _setters(
    Source,
    (
        "connector",
        "name",
        "db",
        "schema",
        "table",
        "ts_ms",
        "snapshot",
        "lsn",
        "tx_id",
        "binlog",
        "version",
        "commit_lsn",
    ),
)


def new_source(
    connector: str | None,
    name: str | None,
    db: str | None,
    schema: str | None,
    table: str | None,
    ts_ms: int | None,
    snapshot: str | None,
    lsn: int | None,
    tx_id: str | None,
    binlog: BinlogPosition | None,
    version: str | None,
    commit_lsn: int | None,
) -> Source:
    """``Source(...)`` with every field given, in declaration order."""
    obj: Source = _new(Source)
    _s_connector(obj, connector)
    _s_name(obj, name)
    _s_db(obj, db)
    _s_schema(obj, schema)
    _s_table(obj, table)
    _s_ts_ms(obj, ts_ms)
    _s_snapshot(obj, snapshot)
    _s_lsn(obj, lsn)
    _s_tx_id(obj, tx_id)
    _s_binlog(obj, binlog)
    _s_version(obj, version)
    _s_commit_lsn(obj, commit_lsn)
    return obj


(
    _c_op,
    _c_source,
    _c_key,
    _c_before,
    _c_after,
    _c_ts_ms,
    _c_transaction,
    _c_topic,
    _c_partition,
    _c_offset,
    _c_event_id,
    _c_unchanged_columns,
    _c_before_is_key_only,
) = _setters(
    ChangeEvent,
    (
        "op",
        "source",
        "key",
        "before",
        "after",
        "ts_ms",
        "transaction",
        "topic",
        "partition",
        "offset",
        "event_id",
        "unchanged_columns",
        "before_is_key_only",
    ),
)


def new_change_event(
    op: str,
    source: Source,
    key: dict[str, Any] | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    ts_ms: int | None,
    transaction: TransactionInfo | None,
    topic: str,
    partition: int,
    offset: int,
    event_id: str,
    unchanged_columns: tuple[str, ...],
    before_is_key_only: bool,
) -> ChangeEvent:
    """``ChangeEvent(...)`` with every field given, in declaration order."""
    obj: ChangeEvent = _new(ChangeEvent)
    _c_op(obj, op)
    _c_source(obj, source)
    _c_key(obj, key)
    _c_before(obj, before)
    _c_after(obj, after)
    _c_ts_ms(obj, ts_ms)
    _c_transaction(obj, transaction)
    _c_topic(obj, topic)
    _c_partition(obj, partition)
    _c_offset(obj, offset)
    _c_event_id(obj, event_id)
    _c_unchanged_columns(obj, unchanged_columns)
    _c_before_is_key_only(obj, before_is_key_only)
    return obj
