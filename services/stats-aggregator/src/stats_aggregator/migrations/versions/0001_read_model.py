"""The statistics read model: per-key states, statistics, alerts outbox, consumer offsets.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None

_UPGRADE = """
-- Per-key state: the last applied row image (only the columns the statistics read) and the
-- source position (LSN) of the change that produced it. A deleted row keeps its position.
CREATE TABLE st_customers (
    id bigint PRIMARY KEY, country text, deleted boolean NOT NULL, pos_lsn bigint
);
CREATE TABLE st_products (
    id bigint PRIMARY KEY, name text, price numeric(12,2), stock integer,
    deleted boolean NOT NULL, pos_lsn bigint,
    projected_lsn bigint  -- last version written to the DynamoDB projection
);
CREATE INDEX st_products_unprojected ON st_products (id)
    WHERE pos_lsn > coalesce(projected_lsn, -1);
CREATE TABLE st_orders (
    id bigint PRIMARY KEY, customer_id bigint, status text, total numeric(14,2),
    created_at timestamptz, deleted boolean NOT NULL, pos_lsn bigint
);
CREATE INDEX st_orders_customer ON st_orders (customer_id);
CREATE TABLE st_order_items (
    id bigint PRIMARY KEY, order_id bigint, product_id bigint, quantity integer,
    unit_price numeric(12,2), deleted boolean NOT NULL, pos_lsn bigint
);
CREATE INDEX st_order_items_order ON st_order_items (order_id);

CREATE TABLE customer_stats (
    customer_id bigint PRIMARY KEY,
    known boolean NOT NULL,            -- present in the customers table
    country text,
    orders_count integer NOT NULL,
    paid_or_shipped_count integer NOT NULL,
    cancelled_count integer NOT NULL,
    total_spent numeric(16,2) NOT NULL,
    live_orders integer NOT NULL,      -- non-cancelled orders (the average's divisor)
    avg_order_value numeric(16,2),
    first_order_at timestamptz,
    last_order_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE product_stats (
    product_id bigint PRIMARY KEY,
    name text,
    price numeric(12,2),
    stock integer,
    low_stock boolean NOT NULL,
    deleted boolean NOT NULL,
    units_sold bigint NOT NULL,
    revenue numeric(18,2) NOT NULL,
    item_refs integer NOT NULL,        -- order lines referencing the product
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_status_counts (status text PRIMARY KEY, count bigint NOT NULL);
CREATE TABLE daily_sales (
    day date PRIMARY KEY, orders bigint NOT NULL, revenue numeric(18,2) NOT NULL
);

CREATE TABLE user_activity_stats (
    user_id text PRIMARY KEY,
    total_events bigint NOT NULL,
    total_purchases bigint NOT NULL,
    total_spent numeric(18,2) NOT NULL,
    last_active timestamptz NOT NULL,
    duration_sum numeric NOT NULL,
    duration_count bigint NOT NULL
);
CREATE TABLE user_event_ids (event_id text PRIMARY KEY);
CREATE TABLE activity_watermark (
    id smallint PRIMARY KEY CHECK (id = 1), max_event_at timestamptz NOT NULL
);

-- The scores of domain.scores(), as of the latest event time seen (see the README).
CREATE VIEW user_stats AS
WITH s AS (
    SELECT u.*,
           GREATEST(0, 1 - GREATEST(0, EXTRACT(EPOCH FROM (w.max_event_at - u.last_active)))
                           / 2592000) AS r,
           LEAST(1, u.total_events / 100.0) AS f,
           LEAST(1, u.total_spent / 500) AS m
    FROM user_activity_stats u LEFT JOIN activity_watermark w ON w.id = 1
)
SELECT user_id, total_events, total_purchases, total_spent, last_active,
       CASE WHEN duration_count > 0 THEN duration_sum / duration_count END AS avg_session_duration,
       round(100 * (0.5 * r + 0.3 * f + 0.2 * m), 1) AS engagement_score,
       round(1 - (0.7 * r + 0.3 * f), 3) AS churn_risk
FROM s;

-- Outbox of low-stock alerts: written with the statistics, published after the commit.
CREATE TABLE low_stock_alerts (
    event_id text PRIMARY KEY,         -- the source change that crossed the threshold
    product_id bigint NOT NULL,
    stock integer NOT NULL,
    threshold integer NOT NULL,
    source_lsn bigint,
    source_ts_ms bigint,
    message jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX low_stock_alerts_unpublished ON low_stock_alerts (created_at)
    WHERE published_at IS NULL;

CREATE TABLE consumer_offsets (
    group_id text NOT NULL, topic text NOT NULL, partition integer NOT NULL,
    next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
"""

_DOWNGRADE = """
DROP VIEW user_stats;
DROP TABLE consumer_offsets, low_stock_alerts, activity_watermark, user_event_ids,
    user_activity_stats, daily_sales, order_status_counts, product_stats, customer_stats,
    st_order_items, st_orders, st_products, st_customers;
"""


def upgrade() -> None:
    op.execute(_UPGRADE)


def downgrade() -> None:
    op.execute(_DOWNGRADE)
