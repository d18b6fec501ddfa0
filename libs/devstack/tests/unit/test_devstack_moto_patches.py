"""The emulator's patches to moto (``devstack._moto_patches``) keep DynamoDB's behaviour.

They run in moto's own process in the dev stack; here they are applied in-process (moto's
``mock_aws``) so a moto upgrade that changes what they replace fails here, by name, rather than
as slow or wrong transactions somewhere in the services' suites.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from devstack import _moto_patches
from moto import mock_aws


@pytest.fixture
def table() -> Iterator[Any]:
    _moto_patches.apply()
    with mock_aws():
        client = boto3.client(
            "dynamodb",
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _get(client: Any, pk: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = client.get_item(TableName="t", Key={"pk": {"S": pk}}).get("Item")
    return item


def test_a_cancelled_transaction_changes_nothing_it_named(table: Any) -> None:
    table.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"S": "p10"}})
    table.put_item(TableName="t", Item={"pk": {"S": "b"}, "v": {"S": "p30"}})
    with pytest.raises(ClientError) as caught:
        table.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "v": {"S": "p20"}}}},
                {"Delete": {"TableName": "t", "Key": {"pk": {"S": "c"}}}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "b"}},
                        "UpdateExpression": "SET v = :v",
                        "ConditionExpression": "v < :v",
                        "ExpressionAttributeValues": {":v": {"S": "p20"}},  # older: refused
                    }
                },
            ],
        )
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in caught.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert _get(table, "a") == {"pk": {"S": "a"}, "v": {"S": "p10"}}  # the put rolled back
    assert _get(table, "b") == {"pk": {"S": "b"}, "v": {"S": "p30"}}
    assert _get(table, "c") is None


def test_a_committed_transaction_writes_every_item(table: Any) -> None:
    table.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"S": "p10"}})
    table.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": "t",
                    "Item": {"pk": {"S": "a"}, "v": {"S": "p20"}},
                    "ConditionExpression": "v < :v",
                    "ExpressionAttributeValues": {":v": {"S": "p20"}},
                }
            },
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "v": {"S": "p20"}}}},
        ],
    )
    assert _get(table, "a") == {"pk": {"S": "a"}, "v": {"S": "p20"}}
    assert _get(table, "b") == {"pk": {"S": "b"}, "v": {"S": "p20"}}


def test_an_item_past_400_kb_is_refused_as_dynamodb_refuses_it(table: Any) -> None:
    attrs = {f"a{i}": {"S": "x" * 30_000} for i in range(14)}  # ~420 KB over 14 attributes
    with pytest.raises(ClientError) as caught:
        table.put_item(TableName="t", Item={"pk": {"S": "big"}, **attrs})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "size" in caught.value.response["Error"]["Message"].lower()
    small = {f"a{i}": {"S": "x" * 30_000} for i in range(12)}  # ~360 KB: fits
    table.put_item(TableName="t", Item={"pk": {"S": "ok"}, **small})
    assert _get(table, "ok") is not None


def test_conditions_still_see_their_own_values_when_parses_are_memoised(table: Any) -> None:
    # The same condition text with other values must not reuse the first values.
    put = {"TableName": "t", "ConditionExpression": "attribute_not_exists(v) OR v < :v"}
    table.put_item(Item={"pk": {"S": "a"}, "v": {"S": "p2"}}, **put,
                   ExpressionAttributeValues={":v": {"S": "p2"}})  # fmt: skip
    with pytest.raises(ClientError):
        table.put_item(Item={"pk": {"S": "a"}, "v": {"S": "p1"}}, **put,
                       ExpressionAttributeValues={":v": {"S": "p1"}})  # fmt: skip
    table.put_item(Item={"pk": {"S": "a"}, "v": {"S": "p3"}}, **put,
                   ExpressionAttributeValues={":v": {"S": "p3"}})  # fmt: skip
    assert _get(table, "a") == {"pk": {"S": "a"}, "v": {"S": "p3"}}
