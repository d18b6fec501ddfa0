"""After-commit work of the sink: publishing the low-stock alert outbox and the DynamoDB
stock projection.

Both are driven from PostgreSQL rows written in the batch's transaction (the outbox table
``low_stock_alerts``, the ``st_products.projected_lsn`` marker), so a crash between the commit
and the publication loses nothing: the next batch (or the next start) publishes what is still
pending. Failures here are logged and retried later; they never fail a committed batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol

import orjson
import sqlalchemy as sa
from consumer_runtime import OutgoingRecord, Publisher
from sink_kit.aws import put_if_newer
from sqlalchemy.engine import Connection

# One page per batch keeps the after-commit work (and so the batch's latency) bounded; a
# backlog drains over the following batches.
PAGE: Final = 500


class AlertPublisher(Protocol):
    """Sends low-stock alerts to their topic and returns once the broker acknowledged them.

    ``messages`` are (key, value) pairs: key = product id, value = the alert JSON. Raise on
    failure; the rows stay in the outbox and are retried after the next batch.
    """

    def publish(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None: ...


class RuntimePublisher:
    """``AlertPublisher`` over the consumer runtime's acknowledged ``Publisher``."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def publish(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        self._publisher.send(topic, [OutgoingRecord(key, value) for key, value in messages])

    def close(self) -> None:
        self._publisher.close()


def publish_alerts(conn: Connection, publisher: AlertPublisher, topic: str) -> int:
    """Publish one page of unpublished alerts, oldest first; returns how many were sent."""
    rows = conn.execute(
        sa.text(
            "SELECT event_id, product_id, message FROM low_stock_alerts "
            "WHERE published_at IS NULL ORDER BY created_at, event_id LIMIT :n"
        ),
        {"n": PAGE},
    ).all()
    if not rows:
        return 0
    publisher.publish(topic, [(str(pid).encode(), orjson.dumps(msg)) for _, pid, msg in rows])
    conn.execute(
        sa.text("UPDATE low_stock_alerts SET published_at = now() WHERE event_id = ANY(:ids)"),
        {"ids": [r[0] for r in rows]},
    )
    return len(rows)


class InventoryProjection:
    """The ``inventory-realtime`` DynamoDB table: one item per product, version = source LSN.

    Writes are conditional (``put_if_newer``), so an older state never overwrites a newer one,
    whichever replica or retry writes last.
    """

    def __init__(self, client: Any, table: str, threshold: int) -> None:
        self.client = client
        self.table = table
        self.threshold = threshold

    def item(
        self, product_id: int, stock: int | None, deleted: bool, version: int
    ) -> dict[str, Any]:
        return {
            "pk": {"S": str(product_id)},
            "product_id": {"N": str(product_id)},
            "stock": {"N": str(stock)} if stock is not None else {"NULL": True},
            "low_stock": {"BOOL": stock is not None and stock < self.threshold},
            "deleted": {"BOOL": deleted},
            "version": {"N": str(version)},
        }

    def sync(self, conn: Connection) -> int:
        """Write one page of products changed since their last projection; returns the count."""
        rows = conn.execute(
            sa.text(
                "SELECT id, stock, deleted, pos_lsn FROM st_products "
                "WHERE pos_lsn > coalesce(projected_lsn, -1) ORDER BY id LIMIT :n"
            ),
            {"n": PAGE},
        ).all()
        for pid, stock, deleted, lsn in rows:
            put_if_newer(self.client, self.table, self.item(pid, stock, deleted, lsn))
        if rows:
            conn.execute(
                sa.text(
                    "UPDATE st_products p SET projected_lsn = v.lsn "
                    "FROM unnest(CAST(:ids AS bigint[]), CAST(:lsns AS bigint[])) AS v(id, lsn) "
                    "WHERE p.id = v.id AND coalesce(p.projected_lsn, -1) < v.lsn"
                ),
                {"ids": [r[0] for r in rows], "lsns": [r[3] for r in rows]},
            )
        return len(rows)
