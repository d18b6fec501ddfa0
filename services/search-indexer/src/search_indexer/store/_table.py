"""The index table over one boto3 client (``IndexTable``): reads, queries, the scan of a
sweep, the sweep floor, and the table's creation; its writes (and how versions of two types
compare in their conditions) are ``_writes``'s. The sweep's scan reads a version stored as a
number (an item of the release before source versions) as below every sweep.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog
from botocore.exceptions import ClientError
from consumer_runtime import RetryableError
from sink_kit.aws import aws_errors, ensure_table

from search_indexer._items import (
    PRODUCT_SK,
    SWEEP_FLOOR_ATTR,
    SWEEP_FLOOR_KEY,
    Item,
    StoredProduct,
    parse_product,
    product_key,
    table_definition,
)
from search_indexer.store._client import make_dynamodb_client
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

# BatchGetItem takes at most 100 keys per request (a DynamoDB limit).
_BATCH_GET_MAX = 100
# UnprocessedKeys (throttling inside a batch read) are retried with this pause, this often,
# before the batch gives up with a RetryableError and the runtime's backoff takes over.
_UNPROCESSED_PAUSE_S = 0.05
_UNPROCESSED_ATTEMPTS = 8


class IndexTable(ConditionalWrites):
    """Typed access to the index table over one (thread-safe) boto3 DynamoDB client: the reads
    here, the conditional writes of ``ConditionalWrites``."""

    def __init__(self, client: Any, table_name: str, scan_client: Any | None = None) -> None:
        self.client = client
        self.name = table_name
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

    # -- reads -------------------------------------------------------------------------------

    def read_products(
        self, ids: Sequence[int], *, consistent: bool = True
    ) -> dict[int, StoredProduct]:
        out: dict[int, StoredProduct] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _BATCH_GET_MAX):
            for item in self._batch_get(
                [product_key(i) for i in unique[start : start + _BATCH_GET_MAX]], consistent
            ):
                stored = parse_product(item)
                out[stored.id] = stored
        return out

    def _batch_get(self, keys: list[Item], consistent: bool) -> list[Item]:
        items: list[Item] = []
        request: dict[str, Any] = {self.name: {"Keys": keys, "ConsistentRead": consistent}}
        for _ in range(_UNPROCESSED_ATTEMPTS):
            with aws_errors(f"batch get {self.name}"):
                response = self.client.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(self.name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(_UNPROCESSED_PAUSE_S)
        raise RetryableError(f"batch get {self.name}: keys still unprocessed (throttled)")

    def read_product(self, product_id: int, *, consistent: bool = True) -> StoredProduct | None:
        with aws_errors(f"get {self.name}"):
            response = self.client.get_item(
                TableName=self.name, Key=product_key(product_id), ConsistentRead=consistent
            )
        item = response.get("Item")
        return None if item is None else parse_product(item)

    def _query(self, **kwargs: Any) -> list[Item]:
        items: list[Item] = []
        limit = kwargs.get("Limit")
        while True:
            with aws_errors(f"query {self.name}"):
                response = self.client.query(TableName=self.name, **kwargs)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last or (limit is not None and len(items) >= limit):
                return items
            kwargs["ExclusiveStartKey"] = last

    def posting_ids(self, token: str) -> set[int]:
        """Products with a live posting of ``token`` (removal markers filtered out)."""
        items = self._query(
            KeyConditionExpression="pk = :pk",
            FilterExpression="attribute_not_exists(removed)",
            ExpressionAttributeValues={":pk": {"S": f"TOKEN#{token}"}},
            ProjectionExpression="sk",
        )
        return {int(i["sk"]["S"]) for i in items}

    def query_price(
        self,
        bucket: str,
        low: str | None,
        high: str | None,
        *,
        in_stock: bool | None = None,
        limit: int | None = None,
        start: Item | None = None,
    ) -> tuple[list[StoredProduct], Item | None]:
        """One page of the ``by-price`` index in ``bucket`` (ascending price, within the bounds,
        in stock or not if ``in_stock`` is given), at most ``limit`` items read (the stock
        filter applies after the limit, as DynamoDB's ``Limit`` does), from ``start``; and
        where the next page starts (``None``: the bucket is done)."""
        values: dict[str, Any] = {":b": {"S": bucket}}
        condition = "price_bucket = :b"
        if low is not None and high is not None:
            condition += " AND price BETWEEN :lo AND :hi"
            values.update({":lo": {"N": low}, ":hi": {"N": high}})
        elif low is not None:
            condition += " AND price >= :lo"
            values[":lo"] = {"N": low}
        elif high is not None:
            condition += " AND price <= :hi"
            values[":hi"] = {"N": high}
        kwargs: dict[str, Any] = {
            "IndexName": "by-price",
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if in_stock is not None:
            kwargs["FilterExpression"] = "stock > :zero" if in_stock else "stock <= :zero"
            values[":zero"] = {"N": "0"}
        if limit is not None:
            kwargs["Limit"] = limit
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        with aws_errors(f"query {self.name}"):
            response = self.client.query(TableName=self.name, **kwargs)
        items = [parse_product(i) for i in response.get("Items", [])]
        return items, response.get("LastEvaluatedKey")

    def query_name(self, key: str, *, exact: bool, limit: int | None) -> list[StoredProduct]:
        """Products whose ``by-name`` key equals or starts with ``key`` (a ``name_key``, within
        the sort key limit), at most ``limit`` (``None``: all)."""
        op = "name_norm = :n" if exact else "begins_with(name_norm, :n)"
        page: dict[str, Any] = {} if limit is None else {"Limit": limit}
        items = self._query(
            IndexName="by-name",
            KeyConditionExpression=f"gsi_name_pk = :p AND {op}",
            ExpressionAttributeValues={":p": {"S": f"NAME#{key[0]}"}, ":n": {"S": key}},
            **page,
        )
        return [parse_product(i) for i in items[:limit]]

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

    def reachable(self) -> bool:
        try:
            with aws_errors(f"describe {self.name}"):
                self.client.describe_table(TableName=self.name)
        except (RetryableError, ClientError):
            return False
        return True


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
