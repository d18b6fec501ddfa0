"""``sink_kit.aws_json``: the orjson bodies are the bodies botocore writes, byte for byte once
parsed, with botocore's method, URL and headers; anything not plain JSON takes botocore's path."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import boto3
import orjson
import pytest
from botocore.config import Config
from sink_kit.aws_json import plain_json_requests

_ITEM = {
    "pk": {"S": "PRODUCT#7"},
    "sk": {"S": "PRODUCT"},
    "name": {"S": 'Crème "Espresso" Cup \u2615 \U0001f600'},
    "price": {"N": "12.50"},
    "stock": {"N": "0"},
    "deleted": {"BOOL": False},
    "gone": {"NULL": True},
    "tags": {"SS": ["a", "b"]},
    "nested": {"M": {"l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {}}]}}},
}

_TRANSACTION = {
    "TransactItems": [
        {
            "Put": {
                "TableName": "product-search-index",
                "Item": _ITEM,
                "ConditionExpression": "#h = :h AND #v < :v",
                "ExpressionAttributeNames": {"#h": "tokens_hash", "#v": "version"},
                "ExpressionAttributeValues": {":h": {"S": "ab"}, ":v": {"S": "q1"}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
        {
            "Delete": {
                "TableName": "product-search-index",
                "Key": {"pk": {"S": "TOKEN#cup"}, "sk": {"S": "7"}},
            }
        },
        {
            "Update": {
                "TableName": "product-search-index",
                "Key": {"pk": {"S": "PRODUCT#8"}, "sk": {"S": "PRODUCT"}},
                "UpdateExpression": "ADD pending_rev :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
    ],
}

_BATCH_GET = {
    "RequestItems": {
        "product-search-index": {
            "Keys": [{"pk": {"S": "PRODUCT#1"}, "sk": {"S": "PRODUCT"}}],
            "ConsistentRead": True,
        }
    }
}


def _client() -> Any:
    return boto3.client(
        "dynamodb",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(parameter_validation=False),
    )


def _requests(operation: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    plain, fast = _client(), plain_json_requests(_client())
    model = plain.meta.service_model.operation_model(operation)
    return (
        plain._serializer.serialize_to_request(params, model),
        fast._serializer.serialize_to_request(params, model),
    )


@pytest.mark.parametrize(
    ("operation", "params"),
    [("TransactWriteItems", _TRANSACTION), ("BatchGetItem", _BATCH_GET)],
)
def test_plain_parameters_give_botocores_request(operation: str, params: dict[str, Any]) -> None:
    expected, got = _requests(operation, params)
    assert json.loads(got["body"]) == json.loads(expected["body"])
    assert got["body"] == orjson.dumps(params)  # written by orjson, not by the model walk
    assert {k: v for k, v in got.items() if k != "body"} == {
        k: v for k, v in expected.items() if k != "body"
    }
    assert got["headers"]["X-Amz-Target"] == f"DynamoDB_20120810.{operation}"


@pytest.mark.parametrize(
    "value",
    [
        {"B": b"\x00\xffbytes"},  # a blob: botocore writes base64
        {"BS": [b"a", b"b"]},
    ],
)
def test_values_botocore_transforms_take_botocores_path(value: dict[str, Any]) -> None:
    params = {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "v": value}}},
        ]
    }
    expected, got = _requests("TransactWriteItems", params)
    assert got["body"] == expected["body"]


def test_a_value_that_is_not_json_gets_botocores_error() -> None:
    params = {"TransactItems": [{"Put": {"TableName": "t", "Item": {"v": {"N": Decimal(1)}}}}]}
    plain, fast = _client(), plain_json_requests(_client())
    model = plain.meta.service_model.operation_model("TransactWriteItems")
    with pytest.raises(TypeError, match="Decimal is not JSON serializable"):
        fast._serializer.serialize_to_request(params, model)


def test_other_operations_are_botocores() -> None:
    params = {"TableName": "t", "Item": {"pk": {"S": "a"}}}
    expected, got = _requests("PutItem", params)
    assert got["body"] == expected["body"]  # json.dumps spacing: botocore wrote it
    assert b": " in got["body"]


def test_a_client_that_validates_parameters_is_refused() -> None:
    client = boto3.client("dynamodb", region_name="eu-west-1")
    with pytest.raises(ValueError, match="parameter_validation=False"):
        plain_json_requests(client)


def test_installing_twice_wraps_once() -> None:
    client = plain_json_requests(plain_json_requests(_client()))
    inner = client._serializer._inner
    assert type(inner).__name__ == "JSONSerializer"
