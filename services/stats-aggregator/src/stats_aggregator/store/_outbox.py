"""After-commit work of the sink: publishing the low-stock alert outbox and the DynamoDB
stock projection (its client and table made from the settings: ``open_projection``).

Both are driven from PostgreSQL rows written in the batch's transaction (the outbox table
``low_stock_alerts``, the ``st_products.projected_version`` marker), so a crash between the
commit and the publication loses nothing: the next batch (or the next start) publishes what is
still pending. Failures here are logged and retried later; they never fail a committed batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import Any, Final, Protocol

import orjson
import sqlalchemy as sa
from botocore.exceptions import ClientError
from consumer_runtime import OutgoingRecord, Publisher
from sink_kit.aws import aws_errors, ensure_table, error_code, make_client
from sink_kit.metrics import AwsCallMetrics
from sqlalchemy.engine import Connection

from stats_aggregator.settings import Settings

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


# Products whose state the projection has not written yet (the predicate of the partial index
# ``st_products_unprojected``, migration 0004): by version, or by LSN for a state positioned by
# LSN alone (also when a replica of the previous release changed a product this release had
# projected: that replica's write cannot replace a versioned item).
UNPROJECTED: Final = (
    "pos_version > coalesce(projected_version, '') "
    "OR (pos_version IS NULL AND pos_lsn IS NOT NULL "
    "AND (pos_lsn > coalesce(projected_lsn, -1) OR projected_version IS NOT NULL))"
)


class InventoryProjection:
    """The ``inventory-realtime`` DynamoDB table: one item per product, with the position of the
    state it holds: ``version`` (S, ``cdc_events.source_version``) and ``lsn`` (N).

    Writes are conditional, so an older state never overwrites a newer one, whichever replica
    or retry writes last. A state replaces an item whose ``version`` is lower as text. An item
    whose ``version`` is a number was written by the previous release (the version was the LSN
    then): a state replaces it if its LSN is higher, so each such item is replaced once, by the
    product's next projected state. A state positioned by LSN alone (stored before versions,
    see ``domain.is_reemit``) is written as the previous release wrote it (``version`` = its
    LSN, a number) and replaces an item whose LSN is lower.
    """

    def __init__(self, client: Any, table: str, threshold: int) -> None:
        self.client = client
        self.table = table
        self.threshold = threshold

    def item(
        self,
        product_id: int,
        stock: int | None,
        deleted: bool,
        version: str | None,
        lsn: int | None,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": {"S": str(product_id)},
            "product_id": {"N": str(product_id)},
            "stock": {"N": str(stock)} if stock is not None else {"NULL": True},
            "low_stock": {"BOOL": stock is not None and stock < self.threshold},
            "deleted": {"BOOL": deleted},
        }
        if version is not None:
            item["version"] = {"S": version}
            if lsn is not None:
                item["lsn"] = {"N": str(lsn)}
        elif lsn is not None:
            item["version"] = item["lsn"] = {"N": str(lsn)}
        return item

    def put(self, item: dict[str, Any]) -> bool:
        """Write ``item`` (from ``item()``) unless the stored one holds a newer state; False
        when it does (counted, not an error)."""
        names = {"#v": "version"}
        values: dict[str, Any] = {":n": {"S": "N"}, ":s": {"S": "S"}}
        lsn = item.get("lsn")
        if "S" in item["version"]:
            values[":v"] = item["version"]
            condition = "attribute_not_exists(#v) OR (attribute_type(#v, :s) AND #v < :v)"
            if lsn is not None:
                values[":lsn"] = lsn
                condition += " OR (attribute_type(#v, :n) AND #v < :lsn)"
            else:
                del values[":n"]  # DynamoDB refuses values the expression does not use
        else:
            names["#l"] = "lsn"
            values[":lsn"] = lsn
            condition = (
                "attribute_not_exists(#v) OR (attribute_type(#v, :n) AND #v < :lsn) "
                "OR (attribute_type(#v, :s) AND #l < :lsn)"
            )
        with aws_errors(f"put {self.table}"):
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def sync(self, conn: Connection) -> int:
        """Write one page of products changed since their last projection; returns the count."""
        rows = conn.execute(
            sa.text(
                "SELECT id, stock, deleted, pos_version, pos_lsn FROM st_products "  # noqa: S608
                f"WHERE {UNPROJECTED} ORDER BY id LIMIT :n"
            ),
            {"n": PAGE},
        ).all()
        for pid, stock, deleted, version, lsn in rows:
            self.put(self.item(pid, stock, deleted, version, lsn))
        versioned = [r for r in rows if r[3] is not None]
        if versioned:
            conn.execute(
                sa.text(
                    "UPDATE st_products p SET projected_version = v.version, projected_lsn = v.lsn "
                    "FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS text[]), "
                    "            CAST(:lsns AS bigint[])) AS v(id, version, lsn) "
                    "WHERE p.id = v.id "
                    "AND coalesce(p.projected_version, '') < v.version COLLATE \"C\""
                ),
                {
                    "ids": [r[0] for r in versioned],
                    "versions": [r[3] for r in versioned],
                    "lsns": [r[4] for r in versioned],
                },
            )
        by_lsn = [r for r in rows if r[3] is None]
        if by_lsn:
            conn.execute(
                sa.text(
                    "UPDATE st_products p SET projected_version = NULL, "
                    "projected_lsn = GREATEST(p.projected_lsn, v.lsn) "
                    "FROM unnest(CAST(:ids AS bigint[]), CAST(:lsns AS bigint[])) AS v(id, lsn) "
                    "WHERE p.id = v.id AND p.pos_version IS NULL"
                ),
                {"ids": [r[0] for r in by_lsn], "lsns": [r[4] for r in by_lsn]},
            )
        return len(rows)


def inventory_table_definition() -> dict[str, Any]:
    """The ``inventory-realtime`` table definition shipped with the package (CreateTable input)."""
    text = resources.files("stats_aggregator").joinpath("inventory-realtime.json").read_text()
    definition: dict[str, Any] = json.loads(text)
    return definition


def open_projection(
    settings: Settings, aws_metrics: AwsCallMetrics | None = None
) -> InventoryProjection | None:
    """The DynamoDB stock projection ``INVENTORY_TABLE`` names (the table created first when
    ``INVENTORY_CREATE_TABLE``), or None without one; its client's calls timed and throttles
    counted in ``aws_metrics`` when given."""
    if not settings.inventory_table:
        return None
    client = make_client("dynamodb", settings.aws_region, settings.aws_endpoint_url)
    if aws_metrics is not None:
        aws_metrics.instrument(client)
    if settings.inventory_create_table:
        definition = inventory_table_definition() | {"TableName": settings.inventory_table}
        ensure_table(client, definition)
    return InventoryProjection(client, settings.inventory_table, settings.low_stock_threshold)
