"""The index table's conditional writes (``ConditionalWrites``, a base of ``IndexTable``): the
transactions of ``_txn``'s units, and the single-item writes of the large-product protocol
(``_large``), with the guards they are conditional on.

Versions are ``S`` (``cdc_events.source_version``); DynamoDB compares two ``S`` values byte by
byte, which is their order. Items of the release before source versions hold an ``N`` (a Kafka
offset), and a comparison between an ``N`` attribute and an ``S`` value is simply false: a
posting write is therefore ``attribute_not_exists(#v) OR attribute_type(#v, :n) OR #v < :v``
(``:n`` = ``"N"``), so every numeric posting is replaced once, and the product guards match the
stored version with its own type (``#v = :b``, ``:b`` an ``N`` for an old item).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from sink_kit.aws import aws_errors, error_code

from search_indexer._items import (
    PENDING_ATTR,
    PENDING_REV_ATTR,
    TOKENS_HASH_ATTR,
    Item,
    pending_entries,
    posting_item,
    product_key,
    removed_posting_item,
)

__all__ = ["POSTING_CONDITION", "ConditionalWrites", "conditional_failed", "product_guard"]

#: A posting write (live or removal marker) goes over an absent posting, a posting of the
#: previous release (``N`` version: an ``S`` never compares with it) or an older one.
POSTING_CONDITION = "attribute_not_exists(#v) OR attribute_type(#v, :n) OR #v < :v"


def product_guard(base: Item | None, pending_rev: int) -> dict[str, Any]:
    """The stored version is still ``base`` (typed as stored, ``StoredProduct.version_value``;
    ``None``: no product yet) and no pending posting was recorded since ``pending_rev`` was
    read."""
    names = {"#v": "version", "#r": PENDING_REV_ATTR}
    values: dict[str, Any] = {}
    if base is None:
        version = "attribute_not_exists(#v)"
    else:
        version = "#v = :b"
        values[":b"] = base
    if pending_rev == 0:
        rev = "attribute_not_exists(#r)"
    else:
        rev = "#r = :r"
        values[":r"] = {"N": str(pending_rev)}
    guard: dict[str, Any] = {
        "ConditionExpression": f"{version} AND {rev}",
        "ExpressionAttributeNames": names,
    }
    if values:
        guard["ExpressionAttributeValues"] = values
    return guard


def conditional_failed(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


class ConditionalWrites:
    """The writes of ``IndexTable`` (``client`` and ``name`` are the table's)."""

    client: Any
    name: str

    def transact(self, items: list[dict[str, Any]], what: str) -> dict[str, Any] | None:
        """One ``TransactWriteItems`` of ``items``: ``None`` when written, the error response
        (its ``CancellationReasons``) when DynamoDB cancelled it. Any other error is mapped as
        every call's (``sink_kit.aws.aws_errors``)."""
        with aws_errors(what):
            try:
                self.client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                response: dict[str, Any] = dict(exc.response)
                return response
        return None

    def add_pending(
        self,
        product_id: int,
        tokens: frozenset[str],
        version: str,
        base: Item | None,
        pending_rev: int,
    ) -> bool:
        """Record postings about to be written at ``version``, if the product item is still as
        read (version ``base`` and ``pending_rev``); on success ``pending_rev`` is one higher."""
        guard = product_guard(base, pending_rev)
        values = {
            **guard.get("ExpressionAttributeValues", {}),
            ":t": {"SS": pending_entries(dict.fromkeys(tokens, version))},
            ":one": {"N": "1"},
        }
        with aws_errors(f"update {self.name}"):
            try:
                self.client.update_item(
                    TableName=self.name,
                    Key=product_key(product_id),
                    # Without its token hash the item never takes the fast path (``_txn``),
                    # which would put over the pending entries without seeing them.
                    UpdateExpression=f"ADD {PENDING_ATTR} :t, #r :one REMOVE {TOKENS_HASH_ATTR}",
                    ConditionExpression=guard["ConditionExpression"],
                    ExpressionAttributeNames=guard["ExpressionAttributeNames"],
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if conditional_failed(exc):
                    return False
                raise
        return True

    def put_product(self, item: Item, base: Item | None, pending_rev: int) -> bool:
        """Put the product item (or marker) if the stored item is still as read (version
        ``base``, ``None``: no item yet; ``pending_rev``). False when another writer got there
        first."""
        kwargs = product_guard(base, pending_rev)
        with aws_errors(f"put {self.name}"):
            try:
                self.client.put_item(TableName=self.name, Item=item, **kwargs)
            except ClientError as exc:
                if conditional_failed(exc):
                    return False
                raise
        return True

    def put_posting(self, token: str, product_id: int, version: str) -> bool:
        """Add the posting unless a posting of this or a newer version is there."""
        return self._put_posting(posting_item(token, product_id, version))

    def remove_posting(self, token: str, product_id: int, version: str, expires_at: int) -> bool:
        """Mark the posting removed unless a posting of this or a newer version is there."""
        return self._put_posting(removed_posting_item(token, product_id, version, expires_at))

    def _put_posting(self, item: Item) -> bool:
        """``PutItem`` over an absent posting, one of the previous release (numeric version:
        replaced once) or an older one; False when this or a newer version is there."""
        with aws_errors(f"put {self.name}"):
            try:
                self.client.put_item(
                    TableName=self.name,
                    Item=item,
                    ConditionExpression=POSTING_CONDITION,
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": item["version"], ":n": {"S": "N"}},
                )
            except ClientError as exc:
                if conditional_failed(exc):
                    return False
                raise
        return True
