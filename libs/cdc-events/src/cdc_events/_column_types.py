"""The per-table column-type registry: how to decode values that carry no schema.

Without ``schemas.enable`` the JSON converter writes ``"price": "BOI="`` and
``"updated_at": 1709251199999999`` with nothing saying these are a decimal and a timestamp.
A ``ColumnTypes`` registry, handed to ``Parser``, says so per table. It also fills gaps in
schema-enabled events: ``decimal.handling.mode=string``/``double`` send decimals as plain
``string``/``double`` fields without a logical type, which the registry can turn back into
``decimal.Decimal``. A field's own logical type always wins over the registry. Without a
registry, schemaless values pass through unchanged.

Configuration errors raise ``ValueError`` at construction (they are the operator's, not the
data's); only values raise ``ParseError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from cdc_events import _decimal as dec
from cdc_events import _logical as lg
from cdc_events._errors import ParseError

Decoder = Callable[[Any, str], Any]
DecimalHandlingMode = Literal["precise", "string", "double"]


@dataclass(frozen=True, slots=True)
class DecimalColumn:
    """A NUMERIC/DECIMAL column; ``scale=None`` for one without a declared scale."""

    scale: int | None = None


def _timestamp(value: Any, path: str) -> Any:
    # ZonedTimestamp (timestamptz) arrives as text, MicroTimestamp (timestamp, the default
    # adaptive precision) as epoch microseconds.
    if type(value) is str:
        return lg.decode_timestamp_text(value, path)
    return lg.decode_timestamp_us(value, path)


def _date(value: Any, path: str) -> Any:
    if type(value) is str:
        return lg.decode_date_text(value, path)
    return lg.decode_date(value, path)


def _time(value: Any, path: str) -> Any:
    if type(value) is str:
        return lg.decode_time_text(value, path)
    return lg.decode_time_us(value, path)


NAMED_TYPES: Final[Mapping[str, Decoder]] = {
    "timestamp": _timestamp,
    "timestamp_ms": lg.decode_timestamp_ms,
    "timestamp_us": lg.decode_timestamp_us,
    "timestamp_ns": lg.decode_timestamp_ns,
    "date": _date,
    "time": _time,
    "time_ms": lg.decode_time_ms,
    "time_us": lg.decode_time_us,
    "time_ns": lg.decode_time_ns,
    "json": lg.decode_json,
    "uuid": lg.decode_uuid,
    "bytes": lg.decode_bytes,
}

ColumnSpec = DecimalColumn | str


def decimal_decoder(spec: DecimalColumn, mode: DecimalHandlingMode) -> Decoder:
    """The decoder of one decimal column under one ``decimal.handling.mode``."""
    scale = spec.scale
    precise = dec.decimal_decoder(scale) if scale is not None else None

    def decode(value: Any, path: str) -> Any:
        if type(value) is dict:
            return dec.decode_variable_decimal(value, path)
        if type(value) is str and mode == "precise":
            if precise is not None:
                return precise(value, path)
            if scale is None:
                raise ParseError(
                    "bad_decimal",
                    f"{path}: a precise decimal without a scale; declare "
                    "DecimalColumn(scale=N) for this column",
                )
            return dec.decode_decimal(value, scale, path)
        return dec.decode_decimal_text(value, scale, path)

    return decode


class ColumnTypes:
    """``ColumnTypes({"public.products": {"price": DecimalColumn(2), "updated_at": "timestamp"}})``.

    Tables are named ``schema.table`` (PostgreSQL), ``database.table`` (MySQL) or by the bare
    table name. Column types: ``DecimalColumn(scale)`` or one of ``NAMED_TYPES``.
    ``decimal_handling_mode`` must match the connector's, because ``"1250"`` is both a decimal
    string and valid base64.
    """

    __slots__ = ("_decoders", "decimal_handling_mode", "tables")

    def __init__(
        self,
        tables: Mapping[str, Mapping[str, ColumnSpec]],
        *,
        decimal_handling_mode: DecimalHandlingMode = "precise",
    ) -> None:
        if decimal_handling_mode not in ("precise", "string", "double"):
            raise ValueError(f"unknown decimal_handling_mode {decimal_handling_mode!r}")
        self.decimal_handling_mode = decimal_handling_mode
        self.tables = {t: dict(cols) for t, cols in tables.items()}
        self._decoders: dict[str, dict[str, Decoder]] = {}
        for table, columns in self.tables.items():
            decoders: dict[str, Decoder] = {}
            for column, spec in columns.items():
                if isinstance(spec, DecimalColumn):
                    if spec.scale is not None and not -dec.MAX_SCALE <= spec.scale <= dec.MAX_SCALE:
                        raise ValueError(
                            f"{table}.{column}: DecimalColumn scale {spec.scale} is outside "
                            f"[-{dec.MAX_SCALE}, {dec.MAX_SCALE}]"
                        )
                    decoders[column] = decimal_decoder(spec, decimal_handling_mode)
                elif isinstance(spec, str) and spec in NAMED_TYPES:
                    decoders[column] = NAMED_TYPES[spec]
                else:
                    raise ValueError(
                        f"{table}.{column}: unknown column type {spec!r}; use DecimalColumn(scale)"
                        f" or one of {sorted(NAMED_TYPES)}"
                    )
            self._decoders[table] = decoders

    def for_table(
        self, schema: str | None, table: str | None, db: str | None
    ) -> Mapping[str, Decoder] | None:
        if not table:
            return None
        for name in (
            f"{schema}.{table}" if schema else None,
            f"{db}.{table}" if db else None,
            table,
        ):
            if name is not None and name in self._decoders:
                return self._decoders[name]
        return None
