"""The reads behind ``cdc dev verify`` (``verify``): the lake's report objects mirrored locally,
the documented DuckDB queries (``queries``) over the mirror, and every version of every key.

Reads only; the totals the queries must give, and the comparison, are ``verify``'s. DuckDB is
the dev stack's (the ``verify`` extra), not the service's: it is imported by the first query.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics_flusher.queries import render, render_iceberg
from analytics_flusher.store._iceberg import (
    CHANGES_TABLES,
    CatalogConfig,
    lake_query,
    load_tables,
    materialize_reports,
    open_catalog,
)

if TYPE_CHECKING:
    from psycopg2.extensions import connection as SourceConnection

__all__ = ["IcebergReader", "LakeMirror", "SourceConnection"]


#: The image reports (what ``LakeMirror.sync`` fetches and the totals' queries read).
IMAGE_REPORTS = ("orders", "order_items")


class LakeMirror:
    """A bucket's report objects, read back through a local mirror."""

    def __init__(self, s3: Any, bucket: str, mirror: Path, prefix: str = "reports") -> None:
        self.s3 = s3
        self.bucket = bucket
        self.mirror = mirror
        self.prefix = prefix.strip("/")
        self._etags: dict[str, str] = {}

    def sync(self, reports: tuple[str, ...] = IMAGE_REPORTS) -> int:
        """Fetch new or changed objects of the image reports; returns how many exist."""
        count = 0
        for report in reports:
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/{report}/"
            ):
                for obj in page.get("Contents", []):
                    count += 1
                    if self._etags.get(obj["Key"]) == obj["ETag"]:
                        continue
                    path = self.mirror / obj["Key"]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                    path.write_bytes(body)
                    self._etags[obj["Key"]] = obj["ETag"]
        return count

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of one of ``queries``' queries over the mirror (``sync`` first)."""
        import duckdb

        relation = duckdb.sql(render(sql, str(self.mirror / self.prefix)))
        assert relation is not None  # a SELECT always yields a relation
        return relation.fetchall()

    def versions(self) -> dict[str, list[str]]:
        """ETags of every version of every object (when the bucket is versioned)."""
        out: dict[str, list[str]] = defaultdict(list)
        for page in self.s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/"
        ):
            for v in page.get("Versions", []):
                out[v["Key"]].append(v["ETag"])
        return dict(out)


class IcebergReader:
    """The changes tables of a catalog, queried with the same documented queries
    (``queries.render_iceberg``) through ``lake_query`` (DuckDB over their Arrow scans)."""

    def __init__(self, config: CatalogConfig) -> None:
        self.config = config
        self._catalog: Any = None

    def load(self) -> bool:
        """Open the catalog; False while one of the changes tables does not exist yet."""
        self._catalog = open_catalog(self.config)
        names = set(load_tables(self._catalog, self.config.namespace))
        return set(CHANGES_TABLES) <= names

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of one of ``queries``' current-state queries over the tables as they are."""
        return lake_query(self._catalog, self.config.namespace, render_iceberg(sql))[1]

    def report_rows(self, sql: str, *, window_ms: int, top_n: int) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` over the report tables, materialized first if the changes
        tables moved since (what the flusher's schedule would do next)."""
        materialize_reports(self._catalog, self.config.namespace, window_ms=window_ms, top_n=top_n)
        return lake_query(self._catalog, self.config.namespace, sql)[1]
