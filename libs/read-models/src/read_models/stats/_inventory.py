"""A product's availability from the ``inventory-realtime`` DynamoDB table, the stock
projection the stats aggregator keeps (``INVENTORY_TABLE``; one item per product, written after
each committed batch, version-guarded).

``InventoryReader`` holds one boto3 client (thread-safe) with short timeouts; an outage or a
missing table becomes ``UnavailableError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from read_models.errors import UnavailableError

__all__ = ["Availability", "InventoryReader"]

# A point read answers in milliseconds; 2 s means the endpoint is unreachable or overloaded.
# One retry rides out a dropped connection; the caller's own timeout bounds the rest.
_CONFIG: Final = Config(
    connect_timeout=2,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 2},
    max_pool_connections=32,
)


@dataclass(frozen=True, slots=True)
class Availability:
    """One item of the projection: the stock (None: unknown), the low-stock flag, whether the
    product is deleted, and the source version the item holds."""

    product_id: int
    stock: int | None
    low_stock: bool
    deleted: bool
    version: str | None

    @property
    def available(self) -> bool:
        return not self.deleted and self.stock is not None and self.stock > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "stock": self.stock,
            "low_stock": self.low_stock,
            "deleted": self.deleted,
            "available": self.available,
            "version": self.version,
        }


def _parse(item: dict[str, Any]) -> Availability:
    stock = item.get("stock", {})
    version = item.get("version", {})
    return Availability(
        product_id=int(item["product_id"]["N"]),
        stock=None if "N" not in stock else int(stock["N"]),
        low_stock=bool(item.get("low_stock", {}).get("BOOL", False)),
        deleted=bool(item.get("deleted", {}).get("BOOL", False)),
        version=version.get("S") or version.get("N"),
    )


class InventoryReader:
    """Reads the projection ``table`` (the stats aggregator's ``INVENTORY_TABLE``)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    @classmethod
    def connect(
        cls, table: str, *, region: str | None = None, endpoint_url: str | None = None
    ) -> InventoryReader:
        session = boto3.session.Session(region_name=region)
        client = session.client("dynamodb", endpoint_url=endpoint_url or None, config=_CONFIG)
        return cls(client, table)

    def availability(self, product_id: int) -> Availability | None:
        """The product's item (None: the projection has none)."""
        try:
            response = self.client.get_item(
                TableName=self.table, Key={"pk": {"S": str(product_id)}}
            )
        except (BotoCoreError, ClientError) as exc:
            raise UnavailableError(f"read {self.table}: {exc}") from exc
        item = response.get("Item")
        return None if item is None else _parse(item)

    def ping(self) -> None:
        """``UnavailableError`` unless the table answers."""
        try:
            self.client.describe_table(TableName=self.table)
        except (BotoCoreError, ClientError) as exc:
            raise UnavailableError(f"describe {self.table}: {exc}") from exc
