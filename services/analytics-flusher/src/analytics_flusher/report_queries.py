"""The window reports as queries over the Iceberg changes tables (SQL text only): what the
report tables hold (``store._iceberg._reports`` materializes them).

Every report is computed from the changes tables, which hold each change exactly once, so a
replay, a kill or a rebalance can never double a figure: the reports are recomputed, not
accumulated. Each is a history by event-time window (``{window_ms}`` long, by the change's
``event_time``, the source commit time) of **signed deltas**: a change contributes its row's
new state (+1, +amount) and takes back the state before it (-1, -amount). The state before a
change is the row's previous change in source order (``source_version``; changes of one
version are one change, however often they were delivered) — exact, not assumed, since the
table holds the row's whole history. So the deltas of every window, summed, are the current
state (they telescope):

- ``sales``: per window and order day (the UTC date of ``created_at``), ``net_orders`` and
  ``net_revenue`` of live orders (not deleted, not cancelled): a placement adds the order, a
  cancellation or a delete takes it back, in the window where it happened;
- ``customer_metrics``: the same per customer (``net_orders``, ``net_spend``);
- ``status_distribution``: per window and status, ``net_orders`` (an order entering the status
  +1, leaving it -1): summed, the current number of orders per status;
- ``product_sales``: per window and product, ``net_lines``, ``net_units`` and
  ``net_revenue`` of order lines (quantity x unit price), gross of their orders' cancellations
  (the exact net figure is the current-state query; ``top_products`` below is net);
- ``window_summary``: per window, the changes of each table, the orders placed and
  cancelled, and the net orders and revenue;
- ``top_products`` / ``top_customers``: the current top ``{n}`` by revenue / spend over live
  orders (ties by units / orders, then id), as the exact queries of ``queries`` compute them.

Sweeps (a Debezium re-snapshot's deletes, README "Sweeps"): rows whose newest version is below
the highest sweep of their table are gone from the source; each such row's last state is taken
back in the window of the change that carried the sweep, so the sums stay equal to the current
state (the same rule as the current-state queries).
"""

from __future__ import annotations

from typing import Final

__all__ = ["REPORTS", "REPORT_SUMS", "REPORT_VIEWS", "render_reports"]

#: Views over ``orders_changes`` and ``order_items_changes`` (registered under those names):
#: every distinct change with the state before it, and the deltas the reports sum.
REPORT_VIEWS: Final = """
CREATE OR REPLACE TEMP VIEW order_steps AS
WITH distinct_changes AS (
    SELECT * FROM orders_changes
    QUALIFY row_number() OVER (
        PARTITION BY order_id, source_version ORDER BY kafka_offset DESC, kafka_partition DESC
    ) = 1
), states AS (
    SELECT order_id, op, source_version, event_time, customer_id, status, total,
        CAST(timezone('UTC', created_at) AS DATE) AS order_day,
        op <> 'd' AS present,
        op <> 'd' AND status IS NOT NULL AND status <> 'cancelled' AS live
    FROM distinct_changes
)
SELECT *,
    lag(present, 1, false) OVER w AS prev_present,
    lag(live, 1, false) OVER w AS prev_live,
    lag(status) OVER w AS prev_status,
    lag(total) OVER w AS prev_total,
    lag(customer_id) OVER w AS prev_customer_id,
    lag(order_day) OVER w AS prev_order_day,
    row_number() OVER (PARTITION BY order_id ORDER BY source_version DESC) = 1 AS newest
FROM states
WINDOW w AS (PARTITION BY order_id ORDER BY source_version);

CREATE OR REPLACE TEMP VIEW order_sweep AS
SELECT sweep_version AS version, event_time FROM orders_changes
WHERE sweep_version IS NOT NULL
QUALIFY row_number() OVER (ORDER BY sweep_version DESC, event_time DESC) = 1;

-- (event_time, sign, the state counted): each change's new state (+1) and the state it
-- replaces (-1), and the last state of each swept order taken back at its sweep.
CREATE OR REPLACE TEMP VIEW order_deltas AS
SELECT event_time, 1 AS sign, present, live, status, total, customer_id, order_day,
    op = 'c' AS placed, live = false AND prev_live AND present AS cancelled
FROM order_steps WHERE present
UNION ALL
SELECT event_time, -1, prev_present, prev_live, prev_status, prev_total, prev_customer_id,
    prev_order_day, false, false
FROM order_steps WHERE prev_present
UNION ALL
SELECT s.event_time, -1, o.present, o.live, o.status, o.total, o.customer_id, o.order_day,
    false, false
FROM order_steps o, order_sweep s
WHERE o.newest AND o.present AND o.source_version < s.version;

CREATE OR REPLACE TEMP VIEW item_steps AS
WITH distinct_changes AS (
    SELECT * FROM order_items_changes
    QUALIFY row_number() OVER (
        PARTITION BY item_id, source_version ORDER BY kafka_offset DESC, kafka_partition DESC
    ) = 1
), states AS (
    SELECT item_id, op, source_version, event_time, product_id, quantity,
        CAST(quantity * CAST(unit_price AS DECIMAL(38, 2)) AS DECIMAL(38, 2)) AS revenue,
        op <> 'd' AS present
    FROM distinct_changes
)
SELECT *,
    lag(present, 1, false) OVER w AS prev_present,
    lag(product_id) OVER w AS prev_product_id,
    lag(quantity) OVER w AS prev_quantity,
    lag(revenue) OVER w AS prev_revenue,
    row_number() OVER (PARTITION BY item_id ORDER BY source_version DESC) = 1 AS newest
FROM states
WINDOW w AS (PARTITION BY item_id ORDER BY source_version);

CREATE OR REPLACE TEMP VIEW item_sweep AS
SELECT sweep_version AS version, event_time FROM order_items_changes
WHERE sweep_version IS NOT NULL
QUALIFY row_number() OVER (ORDER BY sweep_version DESC, event_time DESC) = 1;

CREATE OR REPLACE TEMP VIEW item_deltas AS
SELECT event_time, 1 AS sign, product_id, quantity, revenue FROM item_steps WHERE present
UNION ALL
SELECT event_time, -1, prev_product_id, prev_quantity, prev_revenue
FROM item_steps WHERE prev_present
UNION ALL
SELECT s.event_time, -1, i.product_id, i.quantity, i.revenue
FROM item_steps i, item_sweep s
WHERE i.newest AND i.present AND i.source_version < s.version;
"""

# The window of an event time, as the start and end instants (UTC).
_WINDOW = """
    to_timestamp(floor(epoch_ms(event_time) / {window_ms}) * {window_ms} / 1000) AS window_start,
    to_timestamp((floor(epoch_ms(event_time) / {window_ms}) + 1) * {window_ms} / 1000)
        AS window_end"""

#: Report table name -> the query of its rows (after ``REPORT_VIEWS``), in a fixed order.
_QUERIES = {
    "sales": """
SELECT {window}, order_day,
    CAST(sum(sign) AS BIGINT) AS net_orders,
    CAST(sum(sign * total) AS DECIMAL(38, 2)) AS net_revenue
FROM order_deltas WHERE live
GROUP BY ALL HAVING sum(sign) <> 0 OR sum(sign * total) <> 0
ORDER BY window_start, order_day
""",
    "customer_metrics": """
SELECT {window}, customer_id, order_day,
    CAST(sum(sign) AS BIGINT) AS net_orders,
    CAST(sum(sign * total) AS DECIMAL(38, 2)) AS net_spend
FROM order_deltas WHERE live
GROUP BY ALL HAVING sum(sign) <> 0 OR sum(sign * total) <> 0
ORDER BY window_start, customer_id, order_day
""",
    "status_distribution": """
SELECT {window}, status, CAST(sum(sign) AS BIGINT) AS net_orders
FROM order_deltas WHERE present
GROUP BY ALL HAVING sum(sign) <> 0
ORDER BY window_start, status
""",
    "product_sales": """
SELECT {window}, product_id,
    CAST(sum(sign) AS BIGINT) AS net_lines,
    CAST(sum(sign * quantity) AS BIGINT) AS net_units,
    CAST(sum(sign * revenue) AS DECIMAL(38, 2)) AS net_revenue
FROM item_deltas
GROUP BY ALL HAVING sum(sign) <> 0 OR sum(sign * quantity) <> 0 OR sum(sign * revenue) <> 0
ORDER BY window_start, product_id
""",
    "window_summary": """
WITH orders AS (
    SELECT {window}, count(*) AS order_changes FROM order_steps GROUP BY ALL
), items AS (
    SELECT {window}, count(*) AS item_changes FROM item_steps GROUP BY ALL
), sales AS (
    SELECT {window},
        count(*) FILTER (WHERE placed AND live) AS orders_placed,
        count(*) FILTER (WHERE cancelled) AS orders_cancelled,
        sum(CASE WHEN live THEN sign ELSE 0 END) AS net_orders,
        sum(CASE WHEN live THEN sign * total ELSE 0 END) AS net_revenue
    FROM order_deltas GROUP BY ALL
)
SELECT window_start, window_end,
    CAST(coalesce(o.order_changes, 0) AS BIGINT) AS order_changes,
    CAST(coalesce(i.item_changes, 0) AS BIGINT) AS item_changes,
    CAST(coalesce(s.orders_placed, 0) AS BIGINT) AS orders_placed,
    CAST(coalesce(s.orders_cancelled, 0) AS BIGINT) AS orders_cancelled,
    CAST(coalesce(s.net_orders, 0) AS BIGINT) AS net_orders,
    CAST(coalesce(s.net_revenue, 0) AS DECIMAL(38, 2)) AS net_revenue
FROM orders o FULL JOIN items i USING (window_start, window_end)
    FULL JOIN sales s USING (window_start, window_end)
ORDER BY window_start
""",
}


#: Report table name -> the query of its rows (after ``REPORT_VIEWS``), in a fixed order.
REPORTS: Final[dict[str, str]] = {
    name: query.replace("{window}", _WINDOW) for name, query in _QUERIES.items()
}


#: The report tables summed over every window (their deltas telescope to the current state):
#: what the verifier compares with the source. (order_day, orders, revenue), (order_day,
#: customer_id, orders, spend), (status, orders).
REPORT_SUMS: Final[dict[str, str]] = {
    "daily_sales": """
SELECT order_day, sum(net_orders), sum(net_revenue) FROM sales
GROUP BY order_day HAVING sum(net_orders) <> 0 OR sum(net_revenue) <> 0 ORDER BY order_day
""",
    "customer_spend_by_day": """
SELECT order_day, customer_id, sum(net_orders), sum(net_spend) FROM customer_metrics
GROUP BY order_day, customer_id HAVING sum(net_orders) <> 0 OR sum(net_spend) <> 0
ORDER BY order_day, customer_id
""",
    "order_status_counts": """
SELECT status, sum(net_orders) FROM status_distribution
GROUP BY status HAVING sum(net_orders) <> 0 ORDER BY status
""",
}


def render_reports(query: str, window_ms: int, n: int) -> str:
    """``query`` (``REPORT_VIEWS`` or one of ``REPORTS``) for windows of ``window_ms`` and
    top-``n`` lists."""
    if window_ms <= 0 or n <= 0:
        raise ValueError(f"window_ms={window_ms}, n={n}: both must be positive")
    return query.replace("{window_ms}", str(int(window_ms))).replace("{n}", str(int(n)))
