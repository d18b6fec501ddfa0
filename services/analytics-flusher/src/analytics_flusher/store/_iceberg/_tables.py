"""The changes tables: ``orders_changes`` and ``order_items_changes``, one row per change of
the shop's ``orders`` / ``order_items`` rows, partitioned by ``day(event_time)``.

Every row holds the change's ``op`` (``c``, ``u``, ``d`` or ``r``), the row's columns as the
flusher decodes them (``_changes.OrderChange`` / ``ItemChange``; a delete keeps only the id),
its ``source_version`` (``cdc_events.source_version``: a row's changes in byte order of it),
``sweep_version`` (the snapshot sweep a table's last snapshot read carries, else null; see the
README, "Sweeps"), ``event_time`` (the source's commit time, ``source.ts_ms``, UTC) and where
it sits in Kafka (``kafka_partition``, ``kafka_offset``: what ``_commit`` fences and
deduplicates on). Types follow the shop's schema (``devstack/shop_schema.sql``) as the Parquet
image reports hold it: ids ``long``, ``quantity`` ``int``, amounts ``decimal(18,2)``,
timestamps ``timestamptz`` (microseconds).

``ensure_changes_tables`` creates what is missing; two processes creating a table at once both
succeed (one catalog row wins; the other process loads it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import pyarrow as pa  # type: ignore[import-untyped]
import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (
    DecimalType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from analytics_flusher._changes import ItemChange, OrderChange
from analytics_flusher.errors import AnalyticsFlusherError
from analytics_flusher.store._iceberg._catalog import transient

__all__ = [
    "CHANGES_TABLES",
    "ITEMS_CHANGES",
    "ORDERS_CHANGES",
    "ensure_changes_tables",
    "item_rows",
    "order_rows",
    "table_rows",
]

ORDERS_CHANGES: Final = "orders_changes"
ITEMS_CHANGES: Final = "order_items_changes"

_MONEY = DecimalType(18, 2)


def _schema(*row: tuple[str, IcebergType, bool]) -> Schema:
    """``op``, the row's columns (name, type, required), then the change's own columns."""
    columns = [
        ("op", StringType(), True),
        *row,
        ("source_version", StringType(), True),
        ("sweep_version", StringType(), False),
        ("event_time", TimestamptzType(), True),
        ("kafka_partition", IntegerType(), True),
        ("kafka_offset", LongType(), True),
    ]
    return Schema(
        *(
            NestedField(field_id, name, kind, required=required)
            for field_id, (name, kind, required) in enumerate(columns, start=1)
        )
    )


#: Table name -> its schema.
CHANGES_TABLES: Final[dict[str, Schema]] = {
    ORDERS_CHANGES: _schema(
        ("order_id", LongType(), True),
        ("customer_id", LongType(), False),
        ("status", StringType(), False),
        ("total", _MONEY, False),
        ("created_at", TimestamptzType(), False),
    ),
    ITEMS_CHANGES: _schema(
        ("item_id", LongType(), True),
        ("order_id", LongType(), False),
        ("product_id", LongType(), False),
        ("quantity", IntegerType(), False),
        ("unit_price", _MONEY, False),
    ),
}


def _by_day(schema: Schema) -> PartitionSpec:
    source = schema.find_field("event_time").field_id
    return PartitionSpec(
        PartitionField(source_id=source, field_id=1000, transform=DayTransform(), name="event_day")
    )


def ensure_changes_tables(catalog: Catalog, namespace: str) -> dict[str, Table]:
    """Both changes tables in ``namespace`` (which must exist: ``open_catalog`` creates it),
    created when missing. A table that exists without one of the columns above is refused
    (``AnalyticsFlusherError``): it is not one of these tables."""
    return {
        name: _ensure_table(catalog, namespace, name, schema)
        for name, schema in sorted(CHANGES_TABLES.items())
    }


def _ensure_table(catalog: Catalog, namespace: str, name: str, schema: Schema) -> Table:
    identifier = (namespace, name)
    log = structlog.get_logger("analytics_flusher").bind(table=f"{namespace}.{name}")
    with transient(f"creating table {namespace}.{name}"):
        try:
            table = catalog.load_table(identifier)
        except NoSuchTableError:
            try:
                table = catalog.create_table(identifier, schema, partition_spec=_by_day(schema))
                log.info("created Iceberg table")
                return table
            except TableAlreadyExistsError:
                # Another process created it meanwhile (its catalog row won; the metadata file
                # this one wrote is referenced by nothing).
                log.info("Iceberg table created concurrently; loading it")
                table = catalog.load_table(identifier)
    missing = {f.name for f in schema.fields} - {f.name for f in table.schema().fields}
    if missing:
        raise AnalyticsFlusherError(
            f"table {namespace}.{name} exists without the columns {sorted(missing)}"
        )
    return table


# -- rows -----------------------------------------------------------------------------------------

#: The columns every change has, whatever its table; a row's other columns are the change's
#: attributes of the same name (``OrderChange.order_id``, ``ItemChange.quantity``, ...).
_CHANGE_COLUMNS = frozenset(
    ("op", "source_version", "sweep_version", "event_time", "kafka_partition", "kafka_offset")
)


def order_rows(partition: int, changes: Iterable[OrderChange]) -> pa.Table:
    """``orders_changes`` rows of one partition's decoded changes, in the table's Arrow schema."""
    return _rows(ORDERS_CHANGES, partition, list(changes))


def item_rows(partition: int, changes: Iterable[ItemChange]) -> pa.Table:
    """``order_items_changes`` rows of one partition's decoded changes (as ``order_rows``)."""
    return _rows(ITEMS_CHANGES, partition, list(changes))


def table_rows(table: str, partition: int, changes: Sequence[OrderChange | ItemChange]) -> pa.Table:
    """Rows of ``table`` (``ORDERS_CHANGES`` or ``ITEMS_CHANGES``) from one partition's changes,
    which must all be of that table."""
    return _rows(table, partition, changes)


def _rows(table: str, partition: int, changes: Sequence[OrderChange | ItemChange]) -> pa.Table:
    schema = CHANGES_TABLES[table].as_arrow()
    columns: dict[str, list[object]] = {
        "op": [c.op for c in changes],
        "source_version": [c.version for c in changes],
        "sweep_version": [c.sweep for c in changes],
        "kafka_partition": [partition] * len(changes),
        "kafka_offset": [c.offset for c in changes],
    }
    for name in schema.names:
        if name not in _CHANGE_COLUMNS:
            columns[name] = [getattr(c, name) for c in changes]
    # Milliseconds since the epoch to microseconds, without a datetime per row.
    event_time = pa.array([c.source_ts_ms * 1000 for c in changes], pa.int64())
    arrays = [
        event_time.cast(f.type) if f.name == "event_time" else pa.array(columns[f.name], f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)
