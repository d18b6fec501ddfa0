"""The lake's report tables read back (the analytics flusher materializes them from the changes
tables: ``sales``, ``customer_metrics``, ``status_distribution``, ``product_sales``,
``window_summary``, ``top_products``, ``top_customers``).

``LakeReports`` opens the catalog once (read only: nothing is created but what pyiceberg's SQL
catalog creates for itself) and reads a report table at its current snapshot to Arrow, then to
rows. A table with a ``window_start`` column may be filtered to the windows starting in
``[window_from, window_to)`` (pushed down to the scan, so Iceberg prunes files by their column
statistics) and its rows come in window order; ``limit`` bounds the rows returned. Report tables
are small (one row per window and key), so a table is read whole when unfiltered.

Failures: the catalog database, Glue or the warehouse unreachable is ``UnavailableError``; a
name that is not a report table, or one not materialized yet, is ``NotFoundError``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from sqlalchemy import exc as sa_exc

from read_models.errors import InvalidQueryError, NotFoundError, UnavailableError
from read_models.lake._config import CatalogConfig

__all__ = ["REPORT_TABLES", "LakeReports", "ReportPage"]

#: The report tables the analytics flusher materializes (its ``REPORT_TABLES``; a unit test of
#: the flusher keeps the two equal).
REPORT_TABLES: Final = (
    "sales",
    "customer_metrics",
    "status_distribution",
    "product_sales",
    "window_summary",
    "top_products",
    "top_customers",
)
_WINDOW: Final = "window_start"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().split("\n\n")[0]
    return " ".join(text.split()) or type(exc).__name__


@contextmanager
def _reading(what: str) -> Iterator[None]:
    try:
        yield
    except (NoSuchTableError, NoSuchNamespaceError) as exc:
        raise NotFoundError(f"{what}: {_one_line(exc)}") from exc
    except (sa_exc.SQLAlchemyError, BotoCoreError, ClientError) as exc:
        raise UnavailableError(f"{what}: catalog: {_one_line(exc)}") from exc
    except OSError as exc:
        raise UnavailableError(f"{what}: warehouse: {_one_line(exc)}") from exc


class ReportPage:
    """Rows of one report table (``columns`` in schema order) and the snapshot they were read
    at (None: the table has no snapshot yet)."""

    __slots__ = ("columns", "rows", "snapshot_id", "table")

    def __init__(
        self, table: str, columns: list[str], rows: list[dict[str, Any]], snapshot_id: int | None
    ) -> None:
        self.table = table
        self.columns = columns
        self.rows = rows
        self.snapshot_id = snapshot_id


class LakeReports:
    """Reads the report tables of ``config.namespace``; thread-safe (the catalog is opened once,
    under a lock, on first use)."""

    def __init__(self, config: CatalogConfig) -> None:
        self.config = config
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()

    def catalog(self) -> Catalog:
        with self._lock:
            if self._catalog is None:
                with _reading("opening the Iceberg catalog"):
                    if self.config.kind == "glue":
                        self._catalog = GlueCatalog(self.config.name, **self.config.properties())
                    else:
                        self._catalog = SqlCatalog(self.config.name, **self.config.properties())
            return self._catalog

    def tables(self) -> list[str]:
        """The report tables the namespace holds (materialized at least once), in
        ``REPORT_TABLES`` order."""
        namespace = self.config.namespace
        with _reading(f"listing the tables of {namespace}"):
            existing = {ident[-1] for ident in self.catalog().list_tables(namespace)}
        return [name for name in REPORT_TABLES if name in existing]

    def ping(self) -> None:
        """``UnavailableError`` unless the catalog answers (the namespace may be empty)."""
        try:
            self.tables()
        except NotFoundError:
            return

    def read(
        self,
        name: str,
        *,
        window_from: datetime | None = None,
        window_to: datetime | None = None,
        limit: int | None = None,
    ) -> ReportPage:
        """The rows of report table ``name`` at its current snapshot (see the module docstring)."""
        if name not in REPORT_TABLES:
            raise NotFoundError(f"no report table {name!r} (one of {', '.join(REPORT_TABLES)})")
        if limit is not None and limit < 1:
            raise InvalidQueryError(f"limit must be at least 1, got {limit}")
        for bound in (window_from, window_to):
            if bound is not None and bound.utcoffset() is None:
                raise InvalidQueryError(f"{bound.isoformat()} has no time zone")
        where = f"{self.config.namespace}.{name}"
        with _reading(f"reading {where}"):
            table = self.catalog().load_table((self.config.namespace, name))
            columns = [f.name for f in table.schema().fields]
            windowed = _WINDOW in columns
            if not windowed and (window_from is not None or window_to is not None):
                raise InvalidQueryError(f"{name} has no {_WINDOW} column to filter on")
            snapshot = table.current_snapshot()
            if snapshot is None:
                return ReportPage(name, columns, [], None)
            bounds = [
                f"{_WINDOW} {op} '{bound.isoformat()}'"
                for op, bound in ((">=", window_from), ("<", window_to))
                if bound is not None
            ]
            row_filter = " AND ".join(bounds) or "True"
            arrow = table.scan(row_filter=row_filter, snapshot_id=snapshot.snapshot_id).to_arrow()
        if windowed:
            arrow = arrow.sort_by([(_WINDOW, "ascending")])
        if limit is not None:
            arrow = arrow.slice(0, limit)
        return ReportPage(name, columns, arrow.to_pylist(), snapshot.snapshot_id)
