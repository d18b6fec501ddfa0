"""An in-memory stand-in for the slice of the DynamoDB client the sink uses, so the write
protocol (conditions, races, retries) runs in milliseconds. It evaluates exactly the condition
expressions the sink sends and fails loudly on anything else; the integration tests run the
same code against the AWS emulator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

Key = tuple[str, str]


def _error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "op",
    )


class FakeDynamoDB:
    def __init__(self) -> None:
        self.items: dict[Key, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.calls: list[str] = []
        #: Called with (operation, request) before each operation runs; may raise.
        self.hooks: list[Callable[[str, dict[str, Any]], None]] = []
        self.fail_next: list[ClientError] = []

    # -- helpers for tests -----------------------------------------------------------------

    def products(self) -> dict[int, dict[str, Any]]:
        return {
            int(pk.removeprefix("PRODUCT#")): v
            for (pk, _sk), v in self.items.items()
            if pk.startswith("PRODUCT#")
        }

    def postings(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for (pk, sk), v in self.items.items():
            if pk.startswith("TOKEN#") and not v.get("removed"):
                out.setdefault(pk.removeprefix("TOKEN#"), set()).add(int(sk))
        return out

    def _enter(self, op: str, request: dict[str, Any]) -> None:
        self.calls.append(op)
        for hook in list(self.hooks):
            hook(op, request)
        if self.fail_next:
            raise self.fail_next.pop(0)

    @staticmethod
    def _key(key: dict[str, Any]) -> Key:
        return key["pk"]["S"], key["sk"]["S"]

    def _check(self, current: dict[str, Any] | None, request: dict[str, Any]) -> None:
        """Evaluate the condition as DynamoDB does: typed values, and a comparison between
        values of different types (an ``N`` attribute, an ``S`` value) is false."""
        expr = request.get("ConditionExpression")
        if expr is None:
            return
        names = request.get("ExpressionAttributeNames", {})
        values = request.get("ExpressionAttributeValues", {})

        def stored(name: str) -> tuple[str, str] | None:
            attr = names[name]
            if current is None or attr not in current:
                return None
            ((kind, value),) = current[attr].items()
            return kind, value

        def clause(text: str) -> bool:
            if text.startswith("attribute_not_exists(") and text.endswith(")"):
                return stored(text.removeprefix("attribute_not_exists(")[:-1]) is None
            if text.startswith("attribute_type(") and text.endswith(")"):
                name, kind = text.removeprefix("attribute_type(")[:-1].split(", ")
                have = stored(name)
                return have is not None and have[0] == values[kind]["S"]
            name, op, value = text.split(" ")
            have = stored(name)
            ((kind, raw),) = values[value].items()
            if have is None or have[0] != kind:
                return False
            convert: Callable[[str], Any] = int if kind == "N" else str
            left, right = convert(have[1]), convert(raw)
            if op == "=":
                return bool(left == right)
            if op == "<":
                return bool(left < right)
            raise AssertionError(f"condition the fake does not know: {expr}")

        if expr in (
            "attribute_not_exists(#v) OR attribute_type(#v, :n) OR #v < :v",  # posting writes
            "attribute_not_exists(#v) OR #v < :v",  # sink_kit's put_if_newer (the old release)
        ):
            ok = any(clause(p) for p in expr.split(" OR "))
        else:
            parts = expr.split(" AND ")
            known = ({"version", "pending_rev"}, {"tokens_hash", "version"})
            if len(parts) != 2 or set(names.values()) not in known:
                raise AssertionError(f"condition the fake does not know: {expr}")
            ok = all(clause(p) for p in parts)
        if not ok:
            raise _error("ConditionalCheckFailedException")

    # -- client API ------------------------------------------------------------------------

    def get_item(self, TableName: str, Key: dict[str, Any], ConsistentRead: bool = False) -> Any:
        self._enter("get_item", {"Key": Key})
        with self.lock:
            item = self.items.get(self._key(Key))
        return {"Item": dict(item)} if item is not None else {}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> Any:
        self._enter("batch_get_item", RequestItems)
        ((table, request),) = RequestItems.items()
        with self.lock:
            found = [
                dict(self.items[k]) for k in map(self._key, request["Keys"]) if k in self.items
            ]
        return {"Responses": {table: found}, "UnprocessedKeys": {}}

    def put_item(self, TableName: str, Item: dict[str, Any], **request: Any) -> Any:
        self._enter("put_item", {"Item": Item, **request})
        with self.lock:
            key = self._key(Item)
            self._check(self.items.get(key), request)
            self.items[key] = dict(Item)
        return {}

    def delete_item(self, TableName: str, Key: dict[str, Any], **request: Any) -> Any:
        self._enter("delete_item", {"Key": Key, **request})
        with self.lock:
            key = self._key(Key)
            self._check(self.items.get(key), request)
            self.items.pop(key, None)
        return {}

    def update_item(self, TableName: str, Key: dict[str, Any], **request: Any) -> Any:
        self._enter("update_item", {"Key": Key, **request})
        update = "ADD pending_tokens :t, #r :one REMOVE tokens_hash"
        assert request["UpdateExpression"] == update, request
        assert request["ExpressionAttributeNames"]["#r"] == "pending_rev", request
        values = request["ExpressionAttributeValues"]
        with self.lock:
            key = self._key(Key)
            current = self.items.get(key)
            self._check(current, request)
            item = dict(current) if current is not None else dict(Key)
            have = set(item.get("pending_tokens", {}).get("SS", []))
            item["pending_tokens"] = {"SS": sorted(have | set(values[":t"]["SS"]))}
            item.pop("tokens_hash", None)
            rev = int(item.get("pending_rev", {}).get("N", "0")) + int(values[":one"]["N"])
            item["pending_rev"] = {"N": str(rev)}
            self.items[key] = item
        return {}

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> Any:
        """Puts only (what the sink sends): every condition checked first, then all applied,
        or none with ``CancellationReasons`` as DynamoDB gives them."""
        self._enter("transact_write_items", {"TransactItems": TransactItems})
        with self.lock:
            reasons: list[dict[str, Any]] = []
            for entry in TransactItems:
                request = entry["Put"]
                current = self.items.get(self._key(request["Item"]))
                try:
                    self._check(current, request)
                    reasons.append({"Code": "None"})
                except ClientError:
                    reason: dict[str, Any] = {"Code": "ConditionalCheckFailed"}
                    wants = request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                    if wants and current is not None:
                        reason["Item"] = dict(current)
                    reasons.append(reason)
            if any(r["Code"] != "None" for r in reasons):
                raise ClientError(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": reasons,
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    "TransactWriteItems",
                )
            for entry in TransactItems:
                item = entry["Put"]["Item"]
                self.items[self._key(item)] = dict(item)
        return {}

    def describe_table(self, TableName: str) -> Any:
        self._enter("describe_table", {})
        return {"Table": {"TableName": TableName, "TableStatus": "ACTIVE"}}


@pytest.fixture
def fake_dynamodb() -> FakeDynamoDB:
    return FakeDynamoDB()


@pytest.fixture
def throttling() -> Callable[[], ClientError]:
    return lambda: _error("ThrottlingException")
