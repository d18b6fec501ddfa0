"""The Kafka Connect JSON converter's frame around a row, for ``_parser``.

A record's key and value arrive as bytes (``as_bytes`` takes the odd client's ``str`` or
``bytearray`` too, and enforces the size limit), are JSON (``load_json``: ``not_json`` or
``bad_utf8``), and with schemas enabled are framed as ``{"schema":<schema>,"payload":<row>}``.

Speed: the converter repeats the whole schema (several KB) in every record. The parser keeps
each topic's last schema as its exact bytes (``schema_text``, verified by parsing it once); a
record whose bytes start with ``{"schema":`` + those bytes + ``,"payload":`` has that schema (a
complete JSON value is delimited by its own text), so ``split_payload`` parses only the
payload. A value schema's row decoders are compiled on first use (``CompiledValue``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from cdc_events._column_types import Decoder
from cdc_events._errors import ParseError
from cdc_events._record_kinds import RowFn
from cdc_events._schema import compile_row

_PREFIX: Final = b'{"schema":'
_SEP: Final = b',"payload":'


def as_bytes(data: object, what: str, max_bytes: int) -> bytes | None:
    """``data`` (a key or a value) as bytes; ``ParseError`` for another type or over the limit."""
    if data is None or isinstance(data, bytes):
        pass
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    else:
        raise ParseError("type_mismatch", f"{what} must be bytes, got {type(data).__name__}")
    if data is not None and len(data) > max_bytes:
        raise ParseError(
            "too_large",
            f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit; raise "
            "Parser(max_bytes=...) if such records are expected",
        )
    return data


def load_json(data: bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise ParseError("bad_utf8", f"{what} is not valid UTF-8 at byte {uexc.start}") from exc
        raise ParseError("not_json", f"{what} is not valid JSON: {exc}") from exc


def split_payload(data: bytes, cached: bytes) -> Any:
    """``(payload,)`` if ``data`` is ``{"schema":<cached>,"payload":<payload>}``, else None."""
    n = 10 + len(cached)
    if (
        data.startswith(cached, 10)
        and data.startswith(_SEP, n)
        and data.startswith(_PREFIX)
        and data.endswith(b"}")
    ):
        try:
            # A view: the payload is parsed where it lies, not copied out first.
            return (orjson.loads(memoryview(data)[n + 11 : -1]),)
        except orjson.JSONDecodeError:
            return None
    return None


def schema_text(data: bytes, schema: Any) -> bytes | None:
    """The exact text of the schema inside ``data``, if it can be located and verified."""
    if not data.startswith(_PREFIX):
        return None
    end = data.find(_SEP, 10)
    if end < 0:
        return None
    candidate = data[10:end]
    try:
        if orjson.loads(candidate) != schema:
            return None
    except orjson.JSONDecodeError:
        return None
    return candidate


class CompiledValue:
    """A value schema and its decoders, compiled on first use."""

    __slots__ = ("_envelope_rows", "_row", "overrides", "schema")

    def __init__(self, schema: Any, overrides: Mapping[str, Decoder] | None) -> None:
        self.schema = schema
        self.overrides = overrides
        self._envelope_rows: tuple[RowFn, RowFn] | None = None
        self._row: RowFn | None = None

    def envelope_rows(self) -> tuple[RowFn, RowFn]:
        """Decoders of ``before`` and ``after``."""
        if self._envelope_rows is None:
            fields = self.schema.get("fields") if isinstance(self.schema, dict) else None
            by_name = {
                f["field"]: f
                for f in (fields if isinstance(fields, list) else ())
                if isinstance(f, dict) and isinstance(f.get("field"), str)
            }
            after_schema = by_name.get("after")
            before_schema = by_name.get("before")
            if after_schema is None and before_schema is None:
                raise ParseError("type_mismatch", "schema: an envelope without before/after")
            after = compile_row(after_schema or before_schema, "after", self.overrides)
            before = after
            if before_schema is not None and before_schema != after_schema:
                before = compile_row(before_schema, "before", self.overrides)
            self._envelope_rows = (before.decode, after.decode)
        return self._envelope_rows

    def row(self) -> RowFn:
        """Decoder of the whole value as one row (the unwrap form)."""
        if self._row is None:
            self._row = compile_row(self.schema, "row", self.overrides).decode
        return self._row
