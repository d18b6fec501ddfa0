"""Reading the Iceberg tables back, for operators (``cdc lake``, the flusher's ``cli``): every
table of the namespace scanned to Arrow at a point in time, the current-state views over the
changes tables, and SQL over both through DuckDB (each table's snapshots: ``_snapshots``).

**A point in time** (``as_of``) is ``None`` (each table's current snapshot), a snapshot id, or a
timezone-aware ``datetime`` (the snapshot each table's snapshot log says was current then; a
time before a table's first snapshot reads it empty). A snapshot id names one table's snapshot:
that table is read at it and every other table as of its commit time, so a query sees the lake
as it was when that snapshot was committed.

**Reading** scans with pyiceberg to Arrow and hands the tables to an in-memory DuckDB connection
(``con.register``): DuckDB's Iceberg and S3 extensions are never loaded (they would be
downloaded, and these machines cannot). Every table is read whole into memory: right for the
dev stack and for a modest lake, not for scanning a large one (no filter reaches pyiceberg).

**The current-state views** (``CURRENT_VIEWS``) apply the README's ordering rule to the changes
tables: per key the change with the highest ``source_version`` (compared as text), ties by the
highest ``kafka_offset`` (then ``kafka_partition``, so the choice is always the same); a key
whose newest change is a delete is left out, and so is one whose newest ``source_version`` is
below the highest ``sweep_version`` recorded in its table (no sweep recorded: nothing swept).
``order_day`` is the UTC date of ``created_at``, whatever DuckDB's session time zone.

Storage failures come out as ``LakeReadError`` (one line), so the CLI prints them without a
traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
from consumer_runtime import ConsumerRuntimeError
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot
from sqlalchemy import exc as sa_exc

from analytics_flusher.errors import LakeReadError, UnknownSnapshotError
from analytics_flusher.store._iceberg._catalog import CatalogConfig, open_catalog
from analytics_flusher.store._iceberg._tables import ITEMS_CHANGES, ORDERS_CHANGES

__all__ = [
    "CURRENT_VIEWS",
    "EPOCH",
    "AsOf",
    "lake_query",
    "load_tables",
    "open_for_reading",
    "resolve_as_of",
    "scan_tables",
]

#: A point in time: None (now), a snapshot id, or a timezone-aware datetime.
AsOf = int | datetime | None

#: Iceberg's timestamps are milliseconds since this instant.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

#: The views ``orders_current`` and ``order_items_current`` (DuckDB SQL), over the tables
#: ``orders_changes`` and ``order_items_changes`` registered under those names. The window is
#: computed over every change of a key; QUALIFY then keeps its newest one, unless that one is a
#: delete or is below the table's highest sweep (rows compare as text: VARCHAR's byte order).
CURRENT_VIEWS: Final = """
CREATE VIEW orders_current AS
SELECT order_id, customer_id, status, total, created_at,
       CAST(timezone('UTC', created_at) AS DATE) AS order_day,
       source_version, event_time
FROM orders_changes
QUALIFY row_number() OVER (
        PARTITION BY order_id
        ORDER BY source_version DESC, kafka_offset DESC, kafka_partition DESC) = 1
    AND op <> 'd'
    -- '' when the table records no sweep: every version is at or above it
    AND source_version >= (SELECT coalesce(max(sweep_version), '') FROM orders_changes);

CREATE VIEW order_items_current AS
SELECT item_id, order_id, product_id, quantity, unit_price, source_version, event_time
FROM order_items_changes
QUALIFY row_number() OVER (
        PARTITION BY item_id
        ORDER BY source_version DESC, kafka_offset DESC, kafka_partition DESC) = 1
    AND op <> 'd'
    AND source_version >= (SELECT coalesce(max(sweep_version), '') FROM order_items_changes);
"""


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """The failures of a read as ``LakeReadError``, in one line: a missing table or namespace,
    the catalog database (SQLAlchemy) or the warehouse (pyarrow's ``OSError``) unreachable, or
    refused by ``open_catalog`` (the runtime's ``RetryableError``)."""
    try:
        yield
    except (NoSuchTableError, NoSuchNamespaceError) as exc:
        raise LakeReadError(f"{what}: {_one_line(exc)}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise LakeReadError(f"{what}: catalog database: {_one_line(exc)}") from exc
    except OSError as exc:
        raise LakeReadError(f"{what}: warehouse: {_one_line(exc)}") from exc
    except ConsumerRuntimeError as exc:
        raise LakeReadError(f"{what}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    """The first paragraph of an error's message, on one line (DuckDB and SQLAlchemy append
    hints, the statement and a link after a blank line)."""
    text = str(exc).strip().split("\n\n")[0]
    return " ".join(text.split()) or type(exc).__name__


def open_for_reading(config: CatalogConfig) -> Catalog:
    """``open_catalog``, its failures (an unreachable database, a URI SQLAlchemy cannot parse,
    ...) as ``LakeReadError``."""
    with _reading("opening the Iceberg catalog"):
        return open_catalog(config)


# -- points in time -------------------------------------------------------------------------------


def _millis(when: datetime) -> int:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when.isoformat()} has no time zone: say which (e.g. UTC)")
    return (when - EPOCH) // timedelta(milliseconds=1)


def resolve_as_of(table: Table, as_of: AsOf) -> Snapshot | None:
    """The snapshot of ``table`` to read at ``as_of``; None: the table was empty then (no
    snapshot yet). ``UnknownSnapshotError`` for a snapshot id the table does not have;
    ``ValueError`` for a naive datetime."""
    if as_of is None:
        return table.current_snapshot()
    if isinstance(as_of, datetime):
        return table.snapshot_as_of_timestamp(_millis(as_of))
    snapshot = table.snapshot_by_id(as_of)
    if snapshot is None:
        name = ".".join(table.name())
        raise UnknownSnapshotError(f"{name} has no snapshot {as_of} (see `cdc lake snapshots`)")
    return snapshot


def _table_names(catalog: Catalog, namespace: str) -> list[str]:
    with _reading(f"listing the tables of {namespace}"):
        return sorted(identifier[-1] for identifier in catalog.list_tables(namespace))


def _load(catalog: Catalog, namespace: str, name: str) -> Table:
    with _reading(f"loading {namespace}.{name}"):
        return catalog.load_table((namespace, name))


def load_tables(
    catalog: Catalog, namespace: str, names: Sequence[str] | None = None
) -> dict[str, Table]:
    """The tables of ``namespace`` by name, sorted (or those of ``names``, in their order);
    ``LakeReadError`` for a name the namespace does not have."""
    existing = _table_names(catalog, namespace)
    wanted = existing if names is None else list(dict.fromkeys(names))
    missing = [name for name in wanted if name not in existing]
    if missing:
        raise LakeReadError(
            f"no table {', '.join(missing)} in namespace {namespace} "
            f"(it has: {', '.join(existing) or 'no tables'})"
        )
    return {name: _load(catalog, namespace, name) for name in wanted}


def _scan(table: Table, snapshot: Snapshot | None) -> pa.Table:
    name = ".".join(table.name())
    if snapshot is None:  # empty then: no rows, the columns a scan would give
        return schema_to_pyarrow(table.schema(), include_field_ids=False).empty_table()
    with _reading(f"reading {name} at snapshot {snapshot.snapshot_id}"):
        return table.scan(snapshot_id=snapshot.snapshot_id).to_arrow()


def scan_tables(
    catalog: Catalog,
    namespace: str,
    *,
    as_of: AsOf = None,
    tables: Sequence[str] | None = None,
) -> dict[str, pa.Table]:
    """Every table of ``namespace`` (or those named in ``tables``), by name, read to Arrow at
    ``as_of`` (see the module docstring); a table with no snapshot then is an empty table of its
    schema. ``LakeReadError`` for a named table the namespace does not have, and
    ``UnknownSnapshotError`` for a snapshot id none of its tables has."""
    loaded = load_tables(catalog, namespace, tables)
    at: dict[str, Snapshot | None]
    if isinstance(as_of, int):
        others = {} if tables is None else load_tables(catalog, namespace)
        owner, snapshot = _owner(namespace, {**others, **loaded}, as_of)
        # Every other table as of that commit: the lake as it was when it was made.
        when = EPOCH + timedelta(milliseconds=snapshot.timestamp_ms)
        at = {
            name: snapshot if name == owner else resolve_as_of(table, when)
            for name, table in loaded.items()
        }
    else:
        at = {name: resolve_as_of(table, as_of) for name, table in loaded.items()}
    return {name: _scan(table, at[name]) for name, table in loaded.items()}


def _owner(namespace: str, tables: dict[str, Table], snapshot_id: int) -> tuple[str, Snapshot]:
    """The table that has snapshot ``snapshot_id`` (the namespace's tables), and the snapshot."""
    for name, table in tables.items():
        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is not None:
            return name, snapshot
    raise UnknownSnapshotError(
        f"no table of namespace {namespace} has a snapshot {snapshot_id} (see `cdc lake snapshots`)"
    )


# -- SQL ------------------------------------------------------------------------------------------


def lake_query(
    catalog: Catalog, namespace: str, sql: str, *, as_of: AsOf = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``sql`` run by DuckDB over every table of ``namespace`` at ``as_of``, each registered
    under its own name, with ``CURRENT_VIEWS`` when both changes tables exist: the result's
    column names and rows (Python values: ``Decimal``, timezone-aware UTC ``datetime``, ...).
    Several statements run in order; the rows are the last one's. ``LakeReadError`` if DuckDB
    refuses the query."""
    scanned = scan_tables(catalog, namespace, as_of=as_of)
    # No extension is installed or loaded on demand (the machines running this cannot download
    # one): a query needing one (a read_parquet of s3://...) fails at once with DuckDB's message.
    with duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    ) as con:
        try:
            # Timestamps come back in UTC, whatever the machine's zone.
            con.execute("SET TimeZone = 'UTC'")
            for name, arrow in scanned.items():
                con.register(name, arrow)
            if ORDERS_CHANGES in scanned and ITEMS_CHANGES in scanned:
                con.execute(CURRENT_VIEWS)
            relation = con.sql(sql)
            result = relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.Error as exc:
            raise LakeReadError(f"query failed: {_one_line(exc)}") from exc
    columns = [column.to_pylist() for column in result.columns]
    return list(result.column_names), list(zip(*columns, strict=True))
