"""Compile a Kafka Connect JSON schema once into a row decoder, reused for every event.

The middle layer of the parser. A Debezium topic carries one schema for thousands of events;
walking it per event (looking up logical names, parameters, types) would cost more than parsing
the payload. ``compile_row`` turns a ``struct`` schema into a flat tuple of per-field steps (type
check, TOAST placeholder check, logical-type decoder from ``_logical`` or ``_decimal``) and a
function generated from them (``_rowcode``); ``RowDecoder.decode`` runs the generated function
and falls back to the steps for any row it does not take. ``_parser`` caches compiled schemas
(``_converter.CompiledValue``).

A value that violates its declared type (a string in an ``int32`` field, ``null`` in a required
field, a field the schema does not declare) raises ``ParseError("type_mismatch")``. A schema
nested deeper than 254 levels raises ``ParseError("too_large")`` before it is compiled (its
fingerprint cannot be written, and compiling recurses once per level).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from cdc_events import _decimal as dec
from cdc_events import _logical as lg
from cdc_events._column_types import Decoder
from cdc_events._errors import ParseError
from cdc_events._event_id import canonical_json
from cdc_events._model import UNCHANGED
from cdc_events._rowcode import Step, fast_row

_INT = frozenset({int})
_FLOAT = frozenset({float, int})
_TYPES: Final[Mapping[str, frozenset[type] | None]] = {
    "int8": _INT,
    "int16": _INT,
    "int32": _INT,
    "int64": _INT,
    "float32": _FLOAT,
    "float64": _FLOAT,
    "double": _FLOAT,
    "float": _FLOAT,
    "boolean": frozenset({bool}),
    "string": frozenset({str}),
    "bytes": frozenset({str}),
    "array": frozenset({list}),
    "map": frozenset({dict, list}),
    "struct": frozenset({dict}),
}
# Wire types in which Debezium can put its TOAST placeholder.
_PLACEHOLDER_TYPES: Final = frozenset({"string", "bytes", "array"})


def _bad_schema(path: str, why: str) -> ParseError:
    return ParseError("type_mismatch", f"schema of {path}: {why}")


def _decimal_scale(schema: Mapping[str, Any], path: str) -> int:
    params = schema.get("parameters")
    scale = params.get("scale") if isinstance(params, dict) else None
    if not isinstance(scale, (str, int)) or isinstance(scale, bool):
        raise _bad_schema(path, f"Decimal without an integer 'scale' parameter ({scale!r})")
    try:
        return int(scale)  # Connect writes parameters as strings: {"scale": "2"}
    except (TypeError, ValueError):
        raise _bad_schema(
            path, f"Decimal without an integer 'scale' parameter ({scale!r})"
        ) from None


def _logical_decoder(name: str, schema: Mapping[str, Any], path: str) -> Decoder | None:
    if name == "org.apache.kafka.connect.data.Decimal":
        return dec.decimal_decoder(_decimal_scale(schema, path))
    return _LOGICAL.get(name)


_LOGICAL: Final[Mapping[str, Decoder]] = {
    "io.debezium.data.VariableScaleDecimal": dec.decode_variable_decimal,
    "org.apache.kafka.connect.data.Date": lg.decode_date,
    "io.debezium.time.Date": lg.decode_date,
    "org.apache.kafka.connect.data.Timestamp": lg.decode_timestamp_ms,
    "io.debezium.time.Timestamp": lg.decode_timestamp_ms,
    "io.debezium.time.MicroTimestamp": lg.decode_timestamp_us,
    "io.debezium.time.NanoTimestamp": lg.decode_timestamp_ns,
    "io.debezium.time.ZonedTimestamp": lg.decode_zoned_timestamp,
    "org.apache.kafka.connect.data.Time": lg.decode_time_ms,
    "io.debezium.time.Time": lg.decode_time_ms,
    "io.debezium.time.MicroTime": lg.decode_time_us,
    "io.debezium.time.NanoTime": lg.decode_time_ns,
    "io.debezium.time.ZonedTime": lg.decode_zoned_time,
    "io.debezium.data.Json": lg.decode_json,
    "io.debezium.data.Uuid": lg.decode_uuid,
}


def _array_decoder(items: Decoder) -> Decoder:
    def decode(value: list[Any], path: str) -> list[Any]:
        return [None if v is None else items(v, path) for v in value]

    return decode


def compile_value(
    schema: Any, path: str, override: Decoder | None = None
) -> tuple[frozenset[type] | None, Decoder | None, bool]:
    """(accepted JSON types, decoder or None, may hold the TOAST placeholder) of one schema."""
    if not isinstance(schema, dict):
        raise _bad_schema(path, "expected an object")
    wire = schema.get("type")
    if not isinstance(wire, str) or wire not in _TYPES:
        raise _bad_schema(path, f"unknown type {wire!r}")
    name = schema.get("name")
    decoder: Decoder | None = None
    if isinstance(name, str):
        decoder = _logical_decoder(name, schema, path)
    if decoder is None and override is not None:
        # The registry decodes a field without a logical type, whatever its wire type
        # (decimal.handling.mode=string/double).
        return None, override, wire in _PLACEHOLDER_TYPES
    if decoder is None:
        if wire == "bytes":
            decoder = lg.decode_bytes
        elif wire == "array":
            _, items, _ = compile_value(schema.get("items"), path + "[]")
            if items is not None:
                decoder = _array_decoder(items)
        elif wire == "struct":
            row = compile_row(schema, path)
            decoder = row.decode_nested
    return _TYPES[wire], decoder, wire in _PLACEHOLDER_TYPES


class RowDecoder:
    """The compiled steps of one ``struct`` schema.

    ``decode`` first tries the generated straight-line function of ``_rowcode`` (a row with
    exactly the declared keys, every value of its declared type, no placeholder); any other row
    takes ``_decode_checked``, which validates column by column and raises the precise error.
    """

    __slots__ = ("_fast", "names", "steps")

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps = steps
        self.names = frozenset(s[0] for s in steps)
        self._fast = fast_row(steps)

    def decode(self, raw: Any, side: str) -> tuple[dict[str, Any], list[str] | None]:
        """Decoded row and the names of columns holding the TOAST placeholder (or None)."""
        if type(raw) is dict:
            try:
                out = self._fast(raw)
            except Exception:  # the checked path below raises the precise error
                out = None
            if out is not None:
                return out, None
        return self._decode_checked(raw, side)

    def _decode_checked(self, raw: Any, side: str) -> tuple[dict[str, Any], list[str] | None]:
        if type(raw) is not dict:
            raise ParseError(
                "type_mismatch", f"{side}: expected an object, got {type(raw).__name__}"
            )
        if raw.keys() != self.names:
            raw = self._complete(raw, side)
        out = raw.copy()
        unchanged: list[str] | None = None
        name = ""
        try:
            for name, optional, types, decoder, placeholder in self.steps:
                value = out[name]
                if value is None:
                    if not optional:
                        raise ParseError("type_mismatch", f"{name}: null in a required field")
                    continue
                if placeholder and lg.is_placeholder(value):
                    out[name] = UNCHANGED
                    if unchanged is None:
                        unchanged = []
                    unchanged.append(name)
                    continue
                if types is not None and type(value) not in types:
                    raise ParseError(
                        "type_mismatch",
                        f"{name}: {type(value).__name__} {_short(value)} does not match the "
                        "declared schema type",
                    )
                if decoder is not None:
                    out[name] = decoder(value, name)
        except ParseError as exc:
            raise ParseError(exc.code, f"{side}.{exc.message}") from None
        return out, unchanged

    def _complete(self, raw: dict[str, Any], side: str) -> dict[str, Any]:
        """``raw`` with absent optional fields as null; errors for extra or required ones."""
        extra = sorted(str(k) for k in raw if k not in self.names)
        if extra:
            raise ParseError(
                "type_mismatch", f"{side}: field(s) {extra} are not declared in the schema"
            )
        missing = [s[0] for s in self.steps if s[0] not in raw and not s[1]]
        if missing:
            raise ParseError("missing_field", f"{side}.{missing[0]}: required field missing")
        return {s[0]: raw.get(s[0]) for s in self.steps}

    def decode_nested(self, raw: Any, path: str) -> dict[str, Any]:
        row, _ = self.decode(raw, path)
        return row


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def compile_row(
    schema: Any, path: str, overrides: Mapping[str, Decoder] | None = None
) -> RowDecoder:
    """Compile a ``struct`` schema; ``overrides`` come from the ``ColumnTypes`` registry."""
    if not isinstance(schema, dict) or schema.get("type") != "struct":
        raise _bad_schema(path, "expected a struct")
    fields = schema.get("fields")
    if not isinstance(fields, list):
        raise _bad_schema(path, "a struct without a 'fields' list")
    steps: list[Step] = []
    for field in fields:
        if not isinstance(field, dict) or not isinstance(field.get("field"), str):
            raise _bad_schema(path, f"a field without a name: {_short(field)}")
        name = field["field"]
        override = overrides.get(name) if overrides else None
        types, decoder, placeholder = compile_value(field, f"{path}.{name}", override)
        steps.append((name, field.get("optional") is True, types, decoder, placeholder))
    return RowDecoder(tuple(steps))


def compile_key(schema: Any) -> RowDecoder:
    """``compile_row`` of a key's ``struct`` schema, which gets no fingerprint: first the same
    depth check (``too_large``)."""
    canonical_json(schema, "schema of key")
    return compile_row(schema, "key")


def schema_fingerprint(schema: Any) -> str:
    """The schema's identity: its name and a hash of its canonical JSON."""
    digest = hashlib.blake2b(canonical_json(schema, "schema"), digest_size=16).hexdigest()
    name = schema.get("name") if isinstance(schema, dict) else None
    return f"{name}#{digest}"


def registry_row_decoder(
    overrides: Mapping[str, Decoder],
) -> Callable[[Any, str], tuple[dict[str, Any], list[str] | None]]:
    """A schemaless row decoder: registry columns decoded, the rest passed through."""

    columns = tuple(overrides.items())

    def decode(raw: Any, side: str) -> tuple[dict[str, Any], list[str] | None]:
        row, unchanged = passthrough_row(raw, side)
        try:
            for name, decoder in columns:
                value = row.get(name)
                if value is not None and value is not UNCHANGED:
                    row[name] = decoder(value, name)
        except ParseError as exc:
            raise ParseError(exc.code, f"{side}.{exc.message}") from None
        return row, unchanged

    return decode


def passthrough_row(raw: Any, side: str) -> tuple[dict[str, Any], list[str] | None]:
    """A schemaless row as is, except that TOAST placeholders become ``UNCHANGED``."""
    if type(raw) is not dict:
        raise ParseError("type_mismatch", f"{side}: expected an object, got {type(raw).__name__}")
    values = raw.values()
    # Four scans in C (equality, as is_placeholder tests) instead of a call per column.
    if (
        lg.PLACEHOLDER not in values
        and lg.PLACEHOLDER_B64 not in values
        and lg.PLACEHOLDER_LIST not in values
        and lg.PLACEHOLDER_CODES not in values
    ):
        return raw.copy(), None
    unchanged: list[str] | None = None
    row = dict(raw)
    for name, value in raw.items():
        if lg.is_placeholder(value):
            row[name] = UNCHANGED
            if unchanged is None:
                unchanged = []
            unchanged.append(name)
    return row, unchanged
