"""Readers of the envelope's small parts: source block, transaction block, message, headers.

Helpers of ``_parser``: each reads one field shape from a decoded JSON object, checks its type
and raises ``ParseError`` (``type_mismatch``/``missing_field``) naming the field. Epoch
milliseconds (``ts_ms`` of the envelope, the source block and the side topics) must also be
within the years 1-9999 a ``datetime`` holds, so a consumer can always convert them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import time
from typing import Any, Final

import orjson

from cdc_events import _logical as lg
from cdc_events._construct import new_source
from cdc_events._errors import ParseError
from cdc_events._model import UNCHANGED, BinlogPosition, Source, TransactionInfo

Headers = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]
_MIDNIGHT: Final = time(0)
_NONE: Final = type(None)
# An integer as text (header values): ASCII digits only, at most 20 (any 64-bit value), so
# neither int()'s Unicode digits and underscores nor its digit limit come into play.
_INT_TEXT: Final = re.compile(r"-?[0-9]{1,20}")
MIN_TS_MS: Final = lg.MIN_EPOCH_MS
MAX_TS_MS: Final = lg.MAX_EPOCH_MS
# The JSON types a field may have on the one-pass paths (None included).
TEXT_TYPES: Final = frozenset({str, _NONE})
INT_TYPES: Final = frozenset({int, _NONE})
TXID_TYPES: Final = frozenset({int, str, _NONE})
SOURCE_FIELDS: Final = (
    "connector",
    "name",
    "db",
    "schema",
    "table",
    "version",
    "snapshot",
    "ts_ms",
    "lsn",
    "txId",
    "sequence",
)
# source.sequence of the PostgreSQL connector as Debezium writes it (Jackson, no spaces):
# '["<lastCommitLsn>","<lsn>"]', either element null. Up to 19 digits is below 2**64 whatever
# the digits; anything else (20 digits, a sign, spaces) takes the checked path.
_MATCH_SEQUENCE: Final = re.compile(
    r'\[(?:null|"([0-9]{1,19})"),(?:null|"[0-9]{1,19}")\]'
).fullmatch
# Connectors whose source.sequence is PostgreSQL's; another connector's is its own business.
SEQUENCE_CONNECTORS: Final = frozenset({"postgresql", None})
_U64_MAX: Final = 2**64 - 1
_I64_MIN: Final = -(2**63)


def opt_int(d: Mapping[str, Any], name: str, path: str) -> int | None:
    return int_or_none(d.get(name), path)


def int_or_none(value: Any, path: str) -> int | None:
    if value is None or type(value) is int:
        return value
    if type(value) is str and _INT_TEXT.fullmatch(value) is not None:
        return int(value)  # header values arrive as text
    raise ParseError("type_mismatch", f"{path}: expected an integer, got {value!r:.40}")


def ts_ms_or_none(value: Any, path: str) -> int | None:
    """Epoch milliseconds (an integer, or its text from a header) within years 1-9999."""
    ts_ms = int_or_none(value, path)
    if ts_ms is not None and not MIN_TS_MS <= ts_ms <= MAX_TS_MS:
        raise ParseError(
            "type_mismatch",
            f"{path}: expected epoch milliseconds between years 1 and 9999, got {ts_ms}",
        )
    return ts_ms


def str_or_none(value: Any, path: str) -> str | None:
    if value is None or type(value) is str:
        return value
    raise ParseError("type_mismatch", f"{path}: expected a string, got {value!r:.40}")


def read_sequence(value: Any) -> int | None:
    """The commit LSN (first element) of a PostgreSQL ``source.sequence``, checked whole.

    A JSON string holding a two-element array of nulls or decimal strings, each a 64-bit LSN
    (unsigned, or Debezium's signed Java ``long`` of one past 2**63); anything else is a
    ``type_mismatch``."""
    if type(value) is str:
        match = _MATCH_SEQUENCE(value)
        if match is not None:
            commit = match[1]
            return None if commit is None else int(commit)
    elif value is None:
        return None
    return _read_sequence_checked(value)


def _read_sequence_checked(value: Any) -> int | None:
    def refuse(why: str) -> ParseError:
        return ParseError(
            "type_mismatch",
            'source.sequence: expected the text of a JSON array ["<commit lsn>","<lsn>"] of two '
            f"LSNs (decimal strings) or nulls, got {why}",
        )

    if type(value) is not str:
        raise refuse(f"a JSON {type(value).__name__} instead of a string")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise refuse(f"{value!r:.60}: not JSON") from exc
    if type(doc) is not list or len(doc) != 2:
        raise refuse(f"{value!r:.60}: not a two-element array")
    lsns: list[int | None] = []
    for element in doc:
        if element is None:
            lsns.append(None)
            continue
        if type(element) is not str or _INT_TEXT.fullmatch(element) is None:
            raise refuse(f"{value!r:.60}: an element is not a decimal string")
        lsn = int(element)
        if not _I64_MIN <= lsn <= _U64_MAX:
            raise refuse(f"{value!r:.60}: an element is outside 64 bits")
        lsns.append(lsn)
    return lsns[0]


def read_snapshot(value: Any) -> str | None:
    # The string enum since Debezium 1.x; older versions sent a boolean.
    if value is None or type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise ParseError("type_mismatch", f"source.snapshot: expected a string, got {value!r:.40}")


def read_txid(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is int or type(value) is str:
        return str(value)
    raise ParseError("type_mismatch", f"source.txId: expected an integer, got {value!r:.40}")


def read_binlog(src: Mapping[str, Any]) -> BinlogPosition:
    file = src.get("file")
    if type(file) is not str:
        raise ParseError("type_mismatch", f"source.file: expected a string, got {file!r:.40}")
    pos = int_or_none(src.get("pos"), "source.pos")
    if pos is None:
        raise ParseError("missing_field", "source.pos: a binlog file without a position")
    row = int_or_none(src.get("row"), "source.row")
    return BinlogPosition(
        file=file,
        pos=pos,
        row=row or 0,
        server_id=int_or_none(src.get("server_id"), "source.server_id"),
        gtid=str_or_none(src.get("gtid"), "source.gtid"),
    )


def common_source(src: Any) -> tuple[Any, ...] | None:
    """The fields of a common ``source`` block (``SOURCE_FIELDS`` order) read in one pass, or
    None: any other block (MySQL, a boolean snapshot, text numbers, a type error, ``ts_ms`` out
    of range) needs the checked path. The common block has every field of its expected JSON
    type but ``sequence``, returned raw: ``read_sequence`` checks it."""
    if type(src) is not dict or "file" in src:
        return None
    fields = tuple(map(src.get, SOURCE_FIELDS))
    connector, name, db, schema, table, version, snapshot, ts_ms, lsn, tx_id, _ = fields
    if (
        connector != "mysql"
        and TEXT_TYPES.issuperset(
            map(type, (connector, name, db, schema, table, version, snapshot))
        )
        and (ts_ms is None or (type(ts_ms) is int and MIN_TS_MS <= ts_ms <= MAX_TS_MS))
        and type(lsn) in INT_TYPES
        and type(tx_id) in TXID_TYPES
    ):
        return fields
    return None


def read_source(src: Any) -> Source:
    fields = common_source(src)
    if fields is None:
        return _read_source_checked(src)
    connector, name, db, schema, table, version, snapshot, ts_ms, lsn, tx_id, sequence = fields
    return new_source(
        connector,
        name,
        db,
        schema or None,
        table or None,
        ts_ms,
        snapshot,
        lsn,
        None if tx_id is None else str(tx_id),
        None,
        version,
        read_sequence(sequence) if connector in SEQUENCE_CONNECTORS else None,
    )


def _read_source_checked(src: Any) -> Source:
    if type(src) is not dict:
        raise ParseError("type_mismatch", f"source: expected an object, got {type(src).__name__}")
    connector = str_or_none(src.get("connector"), "source.connector")
    binlog = read_binlog(src) if connector == "mysql" or "file" in src else None
    tx_id = read_txid(src.get("txId"))
    if tx_id is None and binlog is not None:
        tx_id = binlog.gtid
    return Source(
        connector=connector,
        name=str_or_none(src.get("name"), "source.name"),
        db=str_or_none(src.get("db"), "source.db"),
        schema=str_or_none(src.get("schema"), "source.schema") or None,
        table=str_or_none(src.get("table"), "source.table") or None,
        ts_ms=ts_ms_or_none(src.get("ts_ms"), "source.ts_ms"),
        snapshot=read_snapshot(src.get("snapshot")),
        lsn=int_or_none(src.get("lsn"), "source.lsn"),
        tx_id=tx_id,
        binlog=binlog,
        version=str_or_none(src.get("version"), "source.version"),
        commit_lsn=read_sequence(src.get("sequence")) if connector in SEQUENCE_CONNECTORS else None,
    )


def read_transaction(block: Any) -> TransactionInfo | None:
    if block is None:
        return None
    if type(block) is not dict:
        raise ParseError("type_mismatch", "transaction: expected an object")
    tx = block.get("id")
    if type(tx) is not str:
        raise ParseError("type_mismatch", f"transaction.id: expected a string, got {tx!r:.40}")
    return TransactionInfo(
        id=tx,
        total_order=opt_int(block, "total_order", "transaction.total_order"),
        data_collection_order=opt_int(
            block, "data_collection_order", "transaction.data_collection_order"
        ),
    )


def read_message(block: Any) -> dict[str, Any]:
    if type(block) is not dict:
        raise ParseError("missing_field", "message: an op 'm' event without its message block")
    content = block.get("content")
    return {
        "prefix": str_or_none(block.get("prefix"), "message.prefix"),
        "content": None if content is None else lg.decode_bytes(content, "message.content"),
    }


# What Debezium puts in the NOT NULL columns of a key-only ``before``, as text when the
# converter has no schema: "", a zero decimal (base64 "AA==" or "0.00"), the epoch.
_FILLER_TEXT: Final = re.compile(
    r"^(|AA==|-?0(\.0+)?|1970-01-01(T00:00:00(\.0+)?Z)?|00:00:00(\.0+)?Z?)$"
)


def is_filler(value: Any) -> bool:
    if value is None or value is UNCHANGED:
        return True
    if type(value) is str:
        return _FILLER_TEXT.match(value) is not None
    if type(value) in (bytes, list, dict):
        return not value
    try:
        return value in (0, lg.EPOCH, lg.EPOCH_DATE, _MIDNIGHT)
    except (TypeError, ValueError):
        return False


def key_only(before: dict[str, Any] | None, key: dict[str, Any] | None, source: Source) -> bool:
    """A PostgreSQL delete whose non-key columns are all Debezium's fillers ("", 0, epoch)."""
    return key_only_of(before, key, source.connector)


def key_only_of(
    before: dict[str, Any] | None, key: dict[str, Any] | None, connector: str | None
) -> bool:
    if before is None or key is None or connector not in ("postgresql", None):
        return False
    return all(name in key or is_filler(value) for name, value in before.items())


def topic_parts(topic: str) -> tuple[str | None, str | None]:
    parts = topic.split(".")
    if len(parts) >= 3:
        return parts[-2], parts[-1]
    return None, None


def table_of(payload: Mapping[str, Any], topic: str) -> tuple[str | None, str | None, str | None]:
    src = payload.get("source")
    if isinstance(src, dict):
        s, t, d = src.get("schema"), src.get("table"), src.get("db")
        if isinstance(t, str):
            return (s if isinstance(s, str) else None, t, d if isinstance(d, str) else None)
    schema, table = topic_parts(topic)
    t = payload.get("__table")
    d = payload.get("__db") or payload.get("__source_db")
    return (schema, t if isinstance(t, str) else table, d if isinstance(d, str) else None)


def header_items(headers: Headers | None) -> list[tuple[str, bytes | str | None]]:
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return [(str(h[0]), h[1]) for h in headers]


def header(headers: Headers | None, name: str) -> bytes | str | None:
    for h_name, value in header_items(headers):
        if h_name == name:
            return value
    return None


def header_value(raw: bytes | str | None) -> Any:
    if raw is None or isinstance(raw, str):
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("bad_utf8", "a header value is not valid UTF-8") from exc
    # The JSON header converter quotes strings; the simple one does not.
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text
