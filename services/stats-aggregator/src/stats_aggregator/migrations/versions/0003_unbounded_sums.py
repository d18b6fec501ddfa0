"""Sums of source amounts as unbounded ``numeric``: no legitimate source data is ever refused.

``customer_stats.total_spent``, ``product_stats.revenue`` and ``daily_sales.revenue`` add up
values of the source's ``numeric(14,2)``/``numeric(12,2)`` columns. A bounded precision has a
largest sum it can hold (numeric(16,2): 200 orders at the source's maximum total already
overflow it), and PostgreSQL would refuse the batch that crosses it: a statistic of legitimate
data must never be refused because of a store's limit. The sums keep two decimals because
their terms have two. The column type change rewrites the three tables once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE customer_stats ALTER COLUMN total_spent TYPE numeric")
    op.execute("ALTER TABLE product_stats ALTER COLUMN revenue TYPE numeric")
    op.execute("ALTER TABLE daily_sales ALTER COLUMN revenue TYPE numeric")


def downgrade() -> None:
    op.execute("ALTER TABLE daily_sales ALTER COLUMN revenue TYPE numeric(18,2)")
    op.execute("ALTER TABLE product_stats ALTER COLUMN revenue TYPE numeric(18,2)")
    op.execute("ALTER TABLE customer_stats ALTER COLUMN total_spent TYPE numeric(16,2)")
