"""Schema evolution of the changes tables: a column added to a source table becomes a column of
its changes table, with no restart; a value a column cannot take is refused.

A change carries the row's columns the flusher has no field for as ``extra`` (``_changes``),
decoded by the parser from Debezium's schema (decimals with their scale, timestamps, dates).
Their Iceberg types (``type_of``): ``boolean``; ``long`` (integers); ``double``;
``decimal(38, s)`` (``s`` the value's scale); ``string`` (text, and JSON objects or arrays as
their JSON text); ``timestamptz`` / ``timestamp`` (with or without a zone); ``date``;
``time``; ``binary``. A source column whose name is one of the change's own columns (``op``,
``source_version``, ``kafka_offset``, ...) is written as ``source_<name>``.

- **New columns** are added, optional, by ``evolve`` before the commit that first holds them
  (one schema commit; a writer that loses the race to another adding the same column loads
  the table again and finds it). The type is the first non-null value's; a column whose
  values are all null so far is not added yet.
- **Refusals** (``refusal``, checked when a batch is received, before anything is folded): a
  value the column cannot take without loss (``fits``): another kind (text into a ``long``
  column: the source column's type changed), an integer past ``long``, a decimal with more
  digits or a finer scale than its column. The runtime dead-letters that record with the
  reason and writes the rest. Lossless conversions are taken: an integer into ``double`` (up
  to 2^53) or ``decimal``, a decimal into a wider scale.
- A value found not to fit only at commit time (another process added the column with another
  type meanwhile) is written as null and counted (``lake_iceberg_values_nulled_total``): the
  commit must not fail for good on a record already accepted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import structlog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IcebergType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

from analytics_flusher._changes import Change
from analytics_flusher.store._iceberg._catalog import transient
from analytics_flusher.store._iceberg._tables import CHANGES_TABLES

__all__ = [
    "Extra",
    "column_name",
    "evolve",
    "extra_arrays",
    "extra_columns",
    "fits",
    "refusal",
    "type_of",
]

_log = structlog.get_logger("analytics_flusher")

_LONG: Final = (-(2**63), 2**63 - 1)
_DOUBLE_EXACT: Final = 2**53
_MAX_DIGITS: Final = 38
#: The changes tables' own column names: a source column of one of these names is renamed.
_OWN: Final = frozenset(f.name for schema in CHANGES_TABLES.values() for f in schema.fields)
_EVOLVE_ATTEMPTS: Final = 5


def column_name(source_column: str) -> str:
    """The changes-table column of a source column the flusher has no field for."""
    return f"source_{source_column}" if source_column in _OWN else source_column


def type_of(value: Any) -> IcebergType | None:
    """The Iceberg type of a decoded value (None for null: not known yet)."""
    if value is None:
        return None
    kind = type(value)
    if kind is bool:
        return BooleanType()
    if kind is int:
        return LongType()
    if kind is float:
        return DoubleType()
    if kind is Decimal:
        exponent = value.as_tuple().exponent
        scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return DecimalType(_MAX_DIGITS, min(scale, _MAX_DIGITS))
    if kind is dt.datetime:
        return TimestamptzType() if value.tzinfo is not None else TimestampType()
    if kind is dt.date:
        return DateType()
    if kind is dt.time:
        return TimeType()
    if kind is bytes:
        return BinaryType()
    return StringType()  # text, and anything else as its text (JSON for objects and arrays)


def fits(value: Any, column: IcebergType) -> bool:
    """Whether ``column`` takes ``value`` without loss (null always fits)."""
    if value is None:
        return True
    kind = type(value)
    if isinstance(column, LongType):
        return kind is int and _LONG[0] <= value <= _LONG[1]
    if isinstance(column, DoubleType):
        return kind is float or (kind is int and abs(value) <= _DOUBLE_EXACT)
    if isinstance(column, DecimalType):
        if kind is not int and kind is not Decimal:
            return False
        number = Decimal(value)
        if not number.is_finite():
            return False
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > column.scale and number != number.quantize(Decimal(1).scaleb(-column.scale)):
            return False
        return number.adjusted() < column.precision - column.scale
    if isinstance(column, BooleanType):
        return kind is bool
    if isinstance(column, TimestamptzType):
        return kind is dt.datetime and value.tzinfo is not None
    if isinstance(column, TimestampType):
        return kind is dt.datetime and value.tzinfo is None
    if isinstance(column, DateType):
        return kind is dt.date
    if isinstance(column, TimeType):
        return kind is dt.time
    if isinstance(column, BinaryType):
        return kind is bytes
    if isinstance(column, StringType):
        return kind is str or kind is dict or kind is list
    return False


def refusal(table: str, columns: Mapping[str, IcebergType], change: Change) -> str | None:
    """Why ``table`` (whose columns and types are ``columns``: its schema's, and those other
    changes will add) cannot take ``change``'s extra columns, or None; a column it does not
    have yet is taken (added by ``evolve``)."""
    for source_column, value in change.extra:
        if value is None:
            continue
        name = column_name(source_column)
        column = columns.get(name)
        if column is None:
            if type(value) is int and not _LONG[0] <= value <= _LONG[1]:
                return f"{table}.{name}={value} does not fit a long column"
            continue
        if not fits(value, column):
            shown = repr(value)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            return (
                f"{table}.{name} is {column}; this change holds {shown} "
                f"({type(value).__name__}): the source column's type changed to one the "
                "table cannot take"
            )
    return None


#: One change's extra columns (``OrderChange.extra``): (source column, value) pairs.
Extra = tuple[tuple[str, Any], ...]


def extra_columns(extras: Iterable[Extra]) -> dict[str, IcebergType | None]:
    """The columns of changes' ``extra`` (table column name -> the type of its first non-null
    value, None while every value is null), in order of first appearance."""
    out: dict[str, IcebergType | None] = {}
    for extra in extras:
        for source_column, value in extra:
            name = column_name(source_column)
            if out.get(name) is None:
                out[name] = type_of(value)
    return out


def evolve(table: Table, columns: dict[str, IcebergType | None]) -> Table:
    """``table`` with every column of ``columns`` it lacks added (optional; those with no type
    yet are left out); the table itself when none is missing."""
    for _attempt in range(_EVOLVE_ATTEMPTS):
        names = {f.name for f in table.schema().fields}
        missing = {n: t for n, t in columns.items() if n not in names and t is not None}
        if not missing:
            return table
        name = ".".join(table.name())
        try:
            with transient(f"adding columns to {name}"), table.update_schema() as update:
                for column, kind in missing.items():
                    update.add_column(column, kind, doc="added from the source table")
        except CommitFailedException:
            pass  # another writer changed the table first: look again
        else:
            _log.info(
                "columns added to a changes table",
                table=name,
                columns={c: str(t) for c, t in missing.items()},
            )
        with transient(f"loading {name}"):
            table = table.refresh()
    raise CommitFailedException(f"{'.'.join(table.name())}: columns could not be added")


def extra_arrays(
    schema: Schema, extras: Sequence[Extra]
) -> tuple[list[pa.Field], list[pa.Array], int]:
    """The Arrow fields and arrays of the extra columns of ``extras`` (one per row) that
    ``schema`` holds (in its types), and how many values did not fit their column and were
    written as null."""
    wanted = [n for n, t in extra_columns(extras).items() if t is not None]
    fields, arrays, nulled = [], [], 0
    for name in wanted:
        try:
            field = schema.find_field(name)
        except ValueError:
            continue  # not added (evolve runs first): nothing to write
        values: list[Any] = []
        for extra in extras:
            value = next((v for c, v in extra if column_name(c) == name), None)
            if value is not None and not fits(value, field.field_type):
                nulled += 1
                value = None
            elif type(value) in (dict, list):
                value = orjson.dumps(value).decode()
            elif type(value) is int and isinstance(field.field_type, DoubleType):
                value = float(value)
            values.append(value)
        arrow = schema_to_pyarrow(Schema(field))  # with the column's own field id
        fields.append(arrow.field(0))
        arrays.append(pa.array(values, arrow.field(0).type))
    return fields, arrays, nulled
