"""The DuckDB queries that turn the lake's objects into exact totals (SQL text only).

The image reports (``orders``, ``order_items``) hold, per window part, the newest image of every
row the part saw. A row's current state is its image with the highest ``source_version``
(``cdc_events.source_version``: the change's position in the source, compared as text),
whichever part it sits in: replays (a dead letter re-produced at a new offset included),
overlapping parts, Debezium re-emits and the order in which the two topics were consumed do not
matter. Images of one version are one change; the highest Kafka offset among them is taken.

Parts written before the column existed have no version (NULL here, through ``union_by_name``
and an empty ``source_version`` for a lake that holds only such parts): among a row's images
without one, the highest Kafka offset wins (the rule they were written under), and any image
with a version wins over all of them (it was written later, from a suffix of the partition;
see the README's "Parts written before ``source_version``" for what that leaves out). The
totals then follow the source's own definitions (revenue over non-cancelled orders, days are
the UTC date of ``orders.created_at``). A line's revenue is computed in DECIMAL(38,2): DuckDB
types ``quantity * unit_price`` as DECIMAL(18,2), and one line of the largest quantity
(2^31 - 1) at the largest price the shop's ``numeric(10,2)`` holds is 2.1e17, past it.

Sweeps: a row whose newest image's version is below the highest ``sweep_version`` recorded for
its table (a new Debezium snapshot's last read of the table, written on every row of its part's
image object; ``domain.Part.sweeps``) is gone from the source (deleted while Debezium had no
offsets) and is left out like a deleted one; versions compare as text, and an image without one
counts as below any sweep. Only rows of the sweep's own table; ``SWEEPS`` lists the sweeps.
Rows whose reads of that snapshot are not written yet (another partition behind) count as swept
until they are: self-healing (the README's "Sweeps"). The per-window summaries are history and
do not apply sweeps; only these current-state queries do.

The same queries run over the Iceberg changes tables (``render_iceberg``): every change of a row
is the row's image after it, so the rule is the same.

``root`` is where the report prefixes live: ``s3://bucket/reports`` with DuckDB's ``httpfs``
(or the same SQL in Athena over the Hive-partitioned tables), or a local copy of the objects.
"""

from __future__ import annotations

#: The image reports' objects under ``{root}``, as the queries' ``order_parts`` and
#: ``item_parts``.
_PARQUET_PARTS = """
WITH order_parts AS (
    SELECT * FROM read_parquet(
        '{root}/orders/**/*.parquet', hive_partitioning = false, union_by_name = true)
    UNION ALL BY NAME SELECT NULL::VARCHAR AS source_version, NULL::VARCHAR AS sweep_version,
        NULL::BIGINT AS sweep_offset WHERE false
), item_parts AS (
    SELECT * FROM read_parquet(
        '{root}/order_items/**/*.parquet', hive_partitioning = false, union_by_name = true)
    UNION ALL BY NAME SELECT NULL::VARCHAR AS source_version, NULL::VARCHAR AS sweep_version,
        NULL::BIGINT AS sweep_offset WHERE false
)"""

#: The Iceberg changes tables (registered under their names: ``orders_changes``,
#: ``order_items_changes``) in the image reports' shape: a change is the image of its row after
#: it, ``order_day`` the UTC date of ``created_at``, a sweep's offset its change's.
ICEBERG_PARTS = """
WITH order_parts AS (
    SELECT *, op = 'd' AS deleted,
        CAST(timezone('UTC', created_at) AS DATE) AS order_day,
        'orders' AS kafka_topic,
        CASE WHEN sweep_version IS NOT NULL THEN kafka_offset END AS sweep_offset
    FROM orders_changes
), item_parts AS (
    SELECT *, op = 'd' AS deleted,
        'order_items' AS kafka_topic,
        CASE WHEN sweep_version IS NOT NULL THEN kafka_offset END AS sweep_offset
    FROM order_items_changes
)"""

_LATEST = """{parts}, order_sweep AS (  -- '' without a sweep: every version is at or above it
    SELECT coalesce(max(sweep_version), '') AS version FROM order_parts
), item_sweep AS (
    SELECT coalesce(max(sweep_version), '') AS version FROM item_parts
), order_images AS (
    SELECT * FROM order_parts
    QUALIFY row_number() OVER (
        PARTITION BY order_id ORDER BY source_version DESC NULLS LAST, kafka_offset DESC) = 1
), item_images AS (
    SELECT * FROM item_parts
    QUALIFY row_number() OVER (
        PARTITION BY item_id ORDER BY source_version DESC NULLS LAST, kafka_offset DESC) = 1
), orders AS (
    SELECT order_id, customer_id, status, total, order_day FROM order_images
    WHERE NOT deleted
      AND coalesce(source_version, '') >= (SELECT version FROM order_sweep)
), live_orders AS (
    SELECT * FROM orders WHERE status <> 'cancelled'
), lines AS (
    SELECT o.order_day, o.customer_id, i.product_id, i.quantity,
           i.quantity * CAST(i.unit_price AS DECIMAL(38, 2)) AS revenue
    FROM item_images i JOIN live_orders o ON o.order_id = i.order_id
    WHERE NOT i.deleted
      AND coalesce(i.source_version, '') >= (SELECT version FROM item_sweep)
)
"""

#: (order_day, orders, revenue) over non-cancelled orders.
DAILY_SALES = (
    _LATEST
    + """
SELECT order_day, count(*) AS orders, sum(total) AS revenue
FROM live_orders GROUP BY order_day ORDER BY order_day
"""
)

#: (order_day, product_id, units, revenue) over non-cancelled orders.
PRODUCT_SALES_BY_DAY = (
    _LATEST
    + """
SELECT order_day, product_id, sum(quantity) AS units, sum(revenue) AS revenue
FROM lines GROUP BY order_day, product_id ORDER BY order_day, product_id
"""
)

#: (order_day, customer_id, orders, spend) over non-cancelled orders.
CUSTOMER_SPEND_BY_DAY = (
    _LATEST
    + """
SELECT order_day, customer_id, count(*) AS orders, sum(total) AS spend
FROM live_orders GROUP BY order_day, customer_id ORDER BY order_day, customer_id
"""
)

#: (status, orders): every order by its current status.
ORDER_STATUS_COUNTS = (
    _LATEST
    + """
SELECT status, count(*) AS orders FROM orders GROUP BY status ORDER BY status
"""
)

#: The exact top ``{n}`` products by revenue (ties by units, then id).
TOP_PRODUCTS = (
    _LATEST
    + """
SELECT product_id, sum(quantity) AS units, sum(revenue) AS revenue
FROM lines GROUP BY product_id
ORDER BY revenue DESC, units DESC, product_id LIMIT {n}
"""
)

#: The exact top ``{n}`` customers by spend (ties by orders, then id).
TOP_CUSTOMERS = (
    _LATEST
    + """
SELECT customer_id, count(*) AS orders, sum(total) AS spend
FROM live_orders GROUP BY customer_id
ORDER BY spend DESC, orders DESC, customer_id LIMIT {n}
"""
)

#: (table, sweep_version, kafka_topic, kafka_partition, sweep_offset): every sweep the lake
#: records, with where the change that carried it sits in Kafka; the current-state queries
#: above apply the highest of each table.
SWEEPS = (
    _LATEST
    + """
SELECT 'orders' AS "table", sweep_version, kafka_topic, kafka_partition, sweep_offset
FROM order_parts WHERE sweep_version IS NOT NULL
UNION
SELECT 'order_items', sweep_version, kafka_topic, kafka_partition, sweep_offset
FROM item_parts WHERE sweep_version IS NOT NULL
ORDER BY 1, 2, 3, 4, 5
"""
)

#: Summing a per-window summary over its prefix (exact when no part was written twice over
#: an overlapping range; see the README): net revenue per order day. ``union_by_name``: the
#: summaries' money was decimal(18,2) before it was widened to decimal(38,2); without it DuckDB
#: reads every object as the first one it opens.
SALES_SUMMARY_SUM = """
SELECT order_day, sum(net_orders) AS orders, sum(net_revenue) AS revenue
FROM read_parquet('{root}/sales/**/*.parquet', hive_partitioning = false, union_by_name = true)
GROUP BY order_day HAVING sum(net_orders) <> 0 OR sum(net_revenue) <> 0 ORDER BY order_day
"""


def render(query: str, root: str, n: int = 100) -> str:
    """``query`` for the report prefixes under ``root`` (no trailing slash)."""
    safe = root.rstrip("/").replace("'", "''")
    return (
        query.replace("{parts}", _PARQUET_PARTS).replace("{root}", safe).replace("{n}", str(int(n)))
    )


def render_iceberg(query: str, n: int = 100) -> str:
    """``query`` over the Iceberg changes tables, registered in DuckDB under their names."""
    return query.replace("{parts}", ICEBERG_PARTS).replace("{n}", str(int(n)))
