"""The index table over one boto3 client (``IndexTable``): the reads and queries of
``read_models.search.SearchTable`` (shared with the query API), the scan of a sweep, the sweep
floor, and the table's creation; its writes (and how versions of two types
compare in their conditions) are ``_writes``'s. The sweep's scan reads a version stored as a
number (an item of the release before source versions) as below every sweep.
"""

from __future__ import annotations

from typing import Any

import structlog
from botocore.exceptions import ClientError
from read_models.search import SearchTable, make_dynamodb_client
from sink_kit.aws import aws_errors, ensure_table

from search_indexer._items import (
    PRODUCT_SK,
    SWEEP_FLOOR_ATTR,
    SWEEP_FLOOR_KEY,
    Item,
    StoredProduct,
    parse_product,
    table_definition,
)
from search_indexer.store._writes import (
    POSTING_CONDITION,
    ConditionalWrites,
    conditional_failed,
    product_guard,
)

__all__ = [
    "POSTING_CONDITION",
    "IndexTable",
    "make_dynamodb_client",
    "prepare_table",
    "product_guard",
]

_log = structlog.get_logger("search_indexer")


class IndexTable(SearchTable, ConditionalWrites):
    """Typed access to the index table over one (thread-safe) boto3 DynamoDB client: the reads
    of ``read_models.search.SearchTable``, the scans and sweep floor here, the conditional
    writes of ``ConditionalWrites``."""

    def __init__(self, client: Any, table_name: str, scan_client: Any | None = None) -> None:
        super().__init__(client, table_name)
        #: for the sweep's scans (``make_dynamodb_client(scans=True)``); default ``client``
        self.scan_client = client if scan_client is None else scan_client

    @classmethod
    def connect(
        cls, table_name: str, *, region: str | None = None, endpoint_url: str | None = None
    ) -> IndexTable:
        return cls(
            make_dynamodb_client(region, endpoint_url),
            table_name,
            make_dynamodb_client(region, endpoint_url, scans=True),
        )

    def scan_all(self) -> list[Item]:
        """Every item (tests and tools on small tables only)."""
        items: list[Item] = []
        kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        while True:
            with aws_errors(f"scan {self.name}"):
                response = self.scan_client.scan(**kwargs)
            items.extend(response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def scan_products_below(
        self, version: str, *, segment: int = 0, segments: int = 1
    ) -> list[StoredProduct]:
        """Live product items stored at a version below ``version`` as text, or at a numeric
        one (the release before source versions): one ``segment`` of a parallel scan in
        ``segments``, every page, consistent (an item written just before is seen). A scan
        reads every item of its segment, postings included: the filter cuts what is returned,
        not what is read (or paid). The caller checks the form of each version
        (``_versions.below_sweep``)."""
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "ConsistentRead": True,
            # ``attribute_type`` first: an ``N`` version is never compared with an ``S`` (the
            # emulator answers that comparison with a 500, DynamoDB with false).
            "FilterExpression": (
                "#sk = :sk AND attribute_not_exists(#d) AND (attribute_type(#v, :n) OR #v < :s)"
            ),
            "ExpressionAttributeNames": {"#sk": "sk", "#d": "deleted", "#v": "version"},
            "ExpressionAttributeValues": {
                ":sk": {"S": PRODUCT_SK},
                ":n": {"S": "N"},
                ":s": {"S": version},
            },
        }
        if segments > 1:
            kwargs.update(Segment=segment, TotalSegments=segments)
        found: list[StoredProduct] = []
        while True:
            with aws_errors(f"scan {self.name}"):
                response = self.scan_client.scan(**kwargs)
            found.extend(parse_product(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return found
            kwargs["ExclusiveStartKey"] = last

    def read_sweep_floor(self) -> str | None:
        """The highest sweep version applied (``None``: never swept)."""
        with aws_errors(f"get {self.name}"):
            response = self.client.get_item(
                TableName=self.name, Key=SWEEP_FLOOR_KEY, ConsistentRead=True
            )
        value = response.get("Item", {}).get(SWEEP_FLOOR_ATTR, {}).get("S")
        return value if isinstance(value, str) else None

    def raise_sweep_floor(self, version: str) -> None:
        """Set the floor to ``version`` unless it is there already or higher."""
        with aws_errors(f"update {self.name}"):
            try:
                self.client.update_item(
                    TableName=self.name,
                    Key=SWEEP_FLOOR_KEY,
                    UpdateExpression="SET #f = :v",
                    ConditionExpression="attribute_not_exists(#f) OR #f < :v",
                    ExpressionAttributeNames={"#f": SWEEP_FLOOR_ATTR},
                    ExpressionAttributeValues={":v": {"S": version}},
                )
            except ClientError as exc:
                if not conditional_failed(exc):
                    raise


def prepare_table(client: Any, table_name: str) -> bool:
    """Create the table from the packaged definition if it is missing, with TTL on ``ttl``
    (deletion markers expire). True if created. In production Terraform owns the table."""
    definition = table_definition(table_name)
    created = ensure_table(client, definition)
    if created:
        with aws_errors(f"enable TTL on {table_name}"):
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )
        _log.info("created the index table", table=table_name)
    return created
