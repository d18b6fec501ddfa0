"""The search index table read over one boto3 client (``SearchTable``): product items by id,
postings of a token, the ``by-price`` and ``by-name`` indexes. The indexer's ``IndexTable``
adds the scans, the sweep floor and the conditional writes.

An outage is the runtime's ``RetryableError`` (``sink_kit.aws.aws_errors``), as the indexer's
sink sees it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from consumer_runtime import RetryableError
from sink_kit.aws import aws_errors

from read_models.search._client import make_dynamodb_client
from read_models.search._items import Item, StoredProduct, parse_product, product_key

__all__ = ["SearchTable"]

# BatchGetItem takes at most 100 keys per request (a DynamoDB limit).
_BATCH_GET_MAX = 100
# UnprocessedKeys (throttling inside a batch read) are retried with this pause, this often,
# before the batch gives up with a RetryableError and the runtime's backoff takes over.
_UNPROCESSED_PAUSE_S = 0.05
_UNPROCESSED_ATTEMPTS = 8


class SearchTable:
    """The reads of the index table ``table_name`` over ``client`` (thread-safe)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.name = table_name

    @classmethod
    def connect(
        cls, table_name: str, *, region: str | None = None, endpoint_url: str | None = None
    ) -> SearchTable:
        return cls(make_dynamodb_client(region, endpoint_url), table_name)

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

    def posting_page(
        self, token: str, *, limit: int, start: Item | None = None
    ) -> tuple[set[int], Item | None]:
        """One page of ``token``'s postings: at most ``limit`` read from ``start`` (removal
        markers filtered out after the limit, as DynamoDB's ``Limit`` does), and where the next
        page starts (``None``: the token's postings are done)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "attribute_not_exists(removed)",
            "ExpressionAttributeValues": {":pk": {"S": f"TOKEN#{token}"}},
            "ProjectionExpression": "sk",
            "Limit": limit,
        }
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        with aws_errors(f"query {self.name}"):
            response = self.client.query(TableName=self.name, **kwargs)
        ids = {int(i["sk"]["S"]) for i in response.get("Items", [])}
        return ids, response.get("LastEvaluatedKey")

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

    def reachable(self) -> bool:
        """True if the table answers (DescribeTable)."""
        try:
            with aws_errors(f"describe {self.name}"):
                self.client.describe_table(TableName=self.name)
        except (RetryableError, ClientError, BotoCoreError):  # unreachable, no access, no table
            return False
        return True
