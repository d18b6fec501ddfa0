"""The window reports as Iceberg tables, materialized from the changes tables.

``materialize_reports`` scans ``orders_changes`` and ``order_items_changes`` at their current
snapshots, computes every report of ``report_queries`` (and the exact top-N lists of
``queries``) in DuckDB, and replaces each report table's rows with the result in one snapshot
(an overwrite). Its summary records, under ``cdc.sources``, the changes tables' snapshots the
rows were computed from (``{"orders_changes": [snapshot id, sequence number], ...}``).

Exactly once by construction: the changes tables hold every change once (``_commit``), and a
report is recomputed from them, never accumulated, so no replay, kill or rebalance can count a
change twice. Several processes may materialize at once (each flusher replica holding the
orders topic's partition 0 does it on its schedule; ``cdc lake reports`` on demand):

- a report table is written only from sources *newer* than those it records (every changes
  table at the same or a later sequence number, one of them later): a process that computed
  from older snapshots leaves the newer rows alone;
- the overwrite is pinned to the report table's snapshot it checked (``_PinnedTransaction``:
  no rebase by pyiceberg's retry); when another commit lands first it checks again.

Nothing new since the last materialization (every table records the current sources) writes
nothing. The cost is a scan of the changes tables and a DuckDB pass over them, in proportion to
their size: minutes-old data on a schedule, not per commit (README, "Report tables").
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table

from analytics_flusher.queries import TOP_CUSTOMERS, TOP_PRODUCTS, render_iceberg
from analytics_flusher.report_queries import REPORT_VIEWS, REPORTS, render_reports
from analytics_flusher.store._iceberg._catalog import transient
from analytics_flusher.store._iceberg._commit import _PinnedTransaction
from analytics_flusher.store._iceberg._tables import ITEMS_CHANGES, ORDERS_CHANGES

__all__ = [
    "REPORT_SOURCES",
    "REPORT_TABLES",
    "ReportsResult",
    "compute_reports",
    "materialize_reports",
]

_log = structlog.get_logger("analytics_flusher")

#: The snapshot summary key of a report table: the changes tables' snapshots it was computed
#: from.
REPORT_SOURCES: Final = "cdc.sources"
#: Every report table, in write order.
REPORT_TABLES: Final = (*REPORTS, "top_products", "top_customers")
_ATTEMPTS: Final = 5

#: Changes table -> (snapshot id, sequence number) of the snapshot read; None: no snapshot yet.
Sources = dict[str, tuple[int, int] | None]


@dataclass(frozen=True, slots=True)
class ReportsResult:
    """``written``: rows per report table replaced; ``kept``: tables left alone (they record
    the same or newer sources); ``sources`` the changes tables' snapshots read; ``seconds``."""

    sources: Sources
    written: dict[str, int] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def up_to_date(self) -> bool:
        return not self.written


def compute_reports(
    changes: Mapping[str, pa.Table], *, window_ms: int, top_n: int
) -> dict[str, pa.Table]:
    """Every report's rows (``REPORT_TABLES``) from the two changes tables' Arrow rows."""
    with duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    ) as con:
        con.execute("SET TimeZone = 'UTC'")
        for name in (ORDERS_CHANGES, ITEMS_CHANGES):
            con.register(name, changes[name])
        con.execute(render_reports(REPORT_VIEWS, window_ms, top_n))
        out = {
            name: _arrow(con, render_reports(query, window_ms, top_n))
            for name, query in REPORTS.items()
        }
        out["top_products"] = _arrow(con, render_iceberg(TOP_PRODUCTS, top_n))
        out["top_customers"] = _arrow(con, render_iceberg(TOP_CUSTOMERS, top_n))
    return out


def _arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    relation = con.sql(sql)
    assert relation is not None  # a SELECT always yields a relation
    return relation.to_arrow_table()


def materialize_reports(
    catalog: Catalog, namespace: str, *, window_ms: int, top_n: int, force: bool = False
) -> ReportsResult:
    """Recompute every report table from the changes tables' current snapshots (see the module
    docstring); with ``force``, even when every table records those snapshots already."""
    started = time.perf_counter()
    changes = {name: _load(catalog, namespace, name) for name in (ORDERS_CHANGES, ITEMS_CHANGES)}
    sources: Sources = {}
    for name, table in changes.items():
        snapshot = table.current_snapshot()
        sources[name] = (
            None if snapshot is None else (snapshot.snapshot_id, snapshot.sequence_number or 0)
        )
    if all(source is None for source in sources.values()) or (
        not force
        and all(
            _recorded(_load_or_none(catalog, namespace, name)) == sources for name in REPORT_TABLES
        )
    ):  # no change yet, or none since the tables were written
        return ReportsResult(sources, seconds=time.perf_counter() - started)
    with transient("scanning the changes tables"):
        rows = {
            name: table.scan(snapshot_id=_snapshot_id(sources[name])).to_arrow()
            for name, table in changes.items()
        }
    reports = compute_reports(rows, window_ms=window_ms, top_n=top_n)
    written: dict[str, int] = {}
    kept: list[str] = []
    for name in REPORT_TABLES:
        if _replace(catalog, namespace, name, reports[name], sources):
            written[name] = reports[name].num_rows
        else:
            kept.append(name)
    result = ReportsResult(sources, written, kept, time.perf_counter() - started)
    _log.info(
        "report tables materialized",
        written=written,
        kept=kept,
        seconds=round(result.seconds, 3),
    )
    return result


def _snapshot_id(source: tuple[int, int] | None) -> int | None:
    return None if source is None else source[0]


def _load(catalog: Catalog, namespace: str, name: str) -> Table:
    with transient(f"loading {namespace}.{name}"):
        return catalog.load_table((namespace, name))


def _load_or_none(catalog: Catalog, namespace: str, name: str) -> Table | None:
    try:
        return _load(catalog, namespace, name)
    except NoSuchTableError:
        return None


def _recorded(table: Table | None) -> Sources | None:
    """The sources the table's current snapshot records (None: none)."""
    snapshot = None if table is None else table.current_snapshot()
    text = (
        None if snapshot is None or snapshot.summary is None else snapshot.summary[REPORT_SOURCES]
    )
    if text is None:
        return None
    decoded = json.loads(text)
    return {
        name: None if value is None else (value[0], value[1]) for name, value in decoded.items()
    }


def _newer(sources: Sources, recorded: Sources | None) -> bool:
    """``sources`` are later than ``recorded``: no table behind, one ahead."""
    if recorded is None:
        return True
    ahead = False
    for name, mine in sources.items():
        theirs = recorded.get(name)
        mine_seq = -1 if mine is None else mine[1]
        theirs_seq = -1 if theirs is None else theirs[1]
        if mine_seq < theirs_seq:
            return False
        ahead = ahead or mine_seq > theirs_seq
    return ahead


def _replace(catalog: Catalog, namespace: str, name: str, rows: pa.Table, sources: Sources) -> bool:
    """Replace the rows of report table ``name`` with ``rows`` computed from ``sources``;
    False when the table records the same or newer sources (left alone)."""
    summary = {REPORT_SOURCES: json.dumps(sources, sort_keys=True, separators=(",", ":"))}
    for _attempt in range(_ATTEMPTS):
        table = _ensure(catalog, namespace, name, rows.schema)
        if not _newer(sources, _recorded(table)):
            return False
        if {f.name for f in table.schema().fields} != set(rows.schema.names):
            with transient(f"evolving {namespace}.{name}"), table.update_schema() as update:
                update.union_by_name(rows.schema)
            continue
        current = table.current_snapshot()
        transaction = _PinnedTransaction(table, None if current is None else current.snapshot_id)
        try:
            with transient(f"replacing {namespace}.{name}"), warnings.catch_warnings():
                # An empty table's overwrite "did not match any records": expected.
                warnings.simplefilter("ignore", UserWarning)
                transaction.overwrite(rows, snapshot_properties=summary)
                transaction.commit_transaction()
        except CommitFailedException:
            continue  # another materialization landed first: check again
        return True
    _log.warning("report table kept moving; left for the next run", table=f"{namespace}.{name}")
    return False


def _ensure(catalog: Catalog, namespace: str, name: str, schema: pa.Schema) -> Table:
    table = _load_or_none(catalog, namespace, name)
    if table is not None:
        return table
    try:
        with transient(f"creating {namespace}.{name}"):
            return catalog.create_table((namespace, name), schema)
    except TableAlreadyExistsError:
        return _load(catalog, namespace, name)
