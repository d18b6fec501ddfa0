"""Verification of the data lake against ground truth (``cdc dev verify``).

Named by the service's descriptor (``service.SERVICE.verifier``). The lake's objects are
mirrored locally (``store.LakeMirror``: only new or changed objects are fetched) and the
documented DuckDB queries of :mod:`analytics_flusher.queries` (a row's current state: its image
with the highest ``source_version``, unless a later snapshot's sweep of its table is above it)
turn them into totals, which must equal the source database's (:mod:`devstack.truth`) per
order-creation day, (day, product), (day, customer) and status. When the bucket is versioned,
every key written more than once must hold the same bytes each time (a replay rewrites objects,
it never changes them).
Needs the ``verify`` extra (the dev stack).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack import truth
from devstack.verify import Check, VerifyContext, diff_maps
from sink_kit.aws import make_client

from analytics_flusher.queries import (
    CUSTOMER_SPEND_BY_DAY,
    DAILY_SALES,
    ORDER_STATUS_COUNTS,
    PRODUCT_SALES_BY_DAY,
)
from analytics_flusher.report_queries import REPORT_SUMS
from analytics_flusher.store import IMAGE_REPORTS, CatalogConfig, IcebergReader, LakeMirror

if TYPE_CHECKING:
    from analytics_flusher.store import SourceConnection

SERVICE = "analytics-flusher"
CENTS = Decimal("0.01")
REPORTS = ("daily_sales", "product_sales_by_day", "customer_spend_by_day", "order_status_counts")


class Lake(LakeMirror):
    """A bucket's report objects, read back through a local mirror, as the report totals."""

    def totals(self) -> dict[str, Any]:
        """The four report totals, in the shapes of :func:`expected` (empty: nothing yet, or
        one of the image reports has no object yet: the queries read both)."""
        if not self.sync() or not all(
            (self.mirror / self.prefix / report).exists() for report in IMAGE_REPORTS
        ):
            return {}
        return totals(self.rows)


def iceberg_totals(config: CatalogConfig) -> dict[str, Any]:
    """The same totals from the Iceberg changes tables (empty: the tables do not exist yet)."""
    reader = IcebergReader(config)
    return totals(reader.rows) if reader.load() else {}


def report_totals(config: CatalogConfig, *, window_ms: int, top_n: int = 100) -> dict[str, Any]:
    """The report tables summed over every window (``report_queries.REPORT_SUMS``), in the
    shapes of :func:`expected` (empty: the changes tables do not exist yet)."""
    reader = IcebergReader(config)
    if not reader.load():
        return {}

    def rows(name: str) -> list[tuple[Any, ...]]:
        return reader.report_rows(REPORT_SUMS[name], window_ms=window_ms, top_n=top_n)

    return {
        "daily_sales": {
            d: truth.DailySales(d, int(n), Decimal(r).quantize(CENTS))
            for d, n, r in rows("daily_sales")
        },
        "customer_spend_by_day": {
            (d, c): (int(n), Decimal(s).quantize(CENTS))
            for d, c, n, s in rows("customer_spend_by_day")
        },
        "order_status_counts": {s: int(n) for s, n in rows("order_status_counts")},
    }


def totals(rows: Callable[[str], list[tuple[Any, ...]]]) -> dict[str, Any]:
    """The four report totals from ``rows`` (a query's rows over the Parquet images or the
    Iceberg tables), in the shapes of :func:`expected`."""
    return {
        "daily_sales": {
            d: truth.DailySales(d, int(n), Decimal(r).quantize(CENTS))
            for d, n, r in rows(DAILY_SALES)
        },
        "product_sales_by_day": {
            (d, p): (int(u), Decimal(r).quantize(CENTS))
            for d, p, u, r in rows(PRODUCT_SALES_BY_DAY)
        },
        "customer_spend_by_day": {
            (d, c): (int(n), Decimal(s).quantize(CENTS))
            for d, c, n, s in rows(CUSTOMER_SPEND_BY_DAY)
        },
        "order_status_counts": {s: int(n) for s, n in rows(ORDER_STATUS_COUNTS)},
    }


def expected(source: SourceConnection) -> dict[str, Any]:
    return {
        "daily_sales": truth.daily_sales(source),
        "product_sales_by_day": truth.product_sales_by_day(source),
        "customer_spend_by_day": truth.customer_spend_by_day(source),
        "order_status_counts": truth.order_status_counts(source),
    }


def compare(
    lake: Lake | None,
    source: SourceConnection,
    iceberg: CatalogConfig | None = None,
    *,
    window_ms: int = 300_000,
) -> list[Check]:
    """The Parquet images' totals and every rewritten key's bytes (given the bucket), and the
    Iceberg changes tables' and report tables' totals (given their catalog), against the
    source's."""
    want = expected(source)
    out: list[Check] = []
    if lake is not None:
        got = lake.totals()
        out += [diff_maps(SERVICE, name, want[name], got.get(name, {})) for name in REPORTS]
        out.append(_rewrites(lake))
    if iceberg is not None:
        tables = iceberg_totals(iceberg)
        out += [
            diff_maps(SERVICE, f"iceberg {name}", want[name], tables.get(name, {}))
            for name in REPORTS
        ]
        reports = report_totals(iceberg, window_ms=window_ms)
        out += [
            diff_maps(SERVICE, f"reports {name}", want[name], reports.get(name, {}))
            for name in REPORT_SUMS
        ]
    return out


def _rewrites(lake: Lake) -> Check:
    versions = lake.versions()
    rewritten = {k: e for k, e in versions.items() if len(e) > 1}
    differing = sorted(k for k, e in rewritten.items() if len(set(e)) > 1)
    return Check(
        SERVICE,
        "keys written twice hold the same bytes",
        not differing,
        len(rewritten),
        len(rewritten) - len(differing),
        f"{len(differing)} keys rewritten with other bytes, e.g. {differing[:2]}"
        if differing
        else "",
    )


def checks(ctx: VerifyContext) -> list[Check]:
    s3 = make_client("s3", endpoint_url=ctx.info.aws_endpoint_url, env=ctx.info.aws_env)
    service_env = ctx.info.env_of(SERVICE)
    bucket = service_env["S3_BUCKET"]
    prefix = service_env.get("S3_PREFIX", "reports")
    iceberg = None
    if service_env.get("LAKE_CATALOG_URI"):
        iceberg = CatalogConfig.from_env(
            service_env["LAKE_CATALOG_URI"],
            service_env.get("LAKE_WAREHOUSE") or f"s3://{bucket}/warehouse",
            namespace=service_env.get("LAKE_NAMESPACE", "analytics"),
            env={**ctx.info.aws_env, "AWS_ENDPOINT_URL": ctx.info.aws_endpoint_url or ""},
        )
    parquet = iceberg is None or service_env.get("LAKE_PARQUET_EXPORT", "").lower() in (
        "1",
        "true",
        "yes",
    )
    window_ms = int(service_env.get("WINDOW_SECONDS", "300")) * 1000
    with tempfile.TemporaryDirectory(prefix="lake-") as mirror:
        lake = Lake(s3, bucket, Path(mirror), prefix) if parquet else None
        with ctx.source() as conn:
            return compare(lake, conn, iceberg, window_ms=window_ms)
