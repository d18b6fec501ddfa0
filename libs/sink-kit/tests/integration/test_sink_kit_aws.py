from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from consumer_runtime import RejectedError, RetryableError
from devstack import AwsEmulator
from sink_kit.aws import aws_errors, ensure_bucket, ensure_table, make_client, put_if_newer


def _table(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    }


@pytest.fixture
def dynamodb(aws_emulator: AwsEmulator, aws_env: dict[str, str]) -> Any:
    return make_client("dynamodb", "us-east-1", aws_emulator.endpoint_url)


def test_put_if_newer_never_lets_an_older_version_win(dynamodb: Any, unique_id: str) -> None:
    table = f"t-{unique_id}"
    assert ensure_table(dynamodb, _table(table)) is True
    assert ensure_table(dynamodb, _table(table)) is False  # idempotent
    item = lambda v, s: {"pk": {"S": "p1"}, "version": {"N": str(v)}, "stock": {"N": str(s)}}  # noqa: E731
    assert put_if_newer(dynamodb, table, item(5, 50)) is True
    assert put_if_newer(dynamodb, table, item(3, 30)) is False  # older: rejected
    assert put_if_newer(dynamodb, table, item(5, 99)) is False  # same version: a replay
    assert put_if_newer(dynamodb, table, item(7, 70)) is True
    stored = dynamodb.get_item(TableName=table, Key={"pk": {"S": "p1"}})["Item"]
    assert stored["stock"] == {"N": "70"}


def test_bucket_creation_is_idempotent(
    aws_emulator: AwsEmulator, aws_env: dict[str, str], unique_id: str
) -> None:
    s3 = make_client("s3", "us-east-1", aws_emulator.endpoint_url)
    bucket = f"lake-{unique_id}"
    assert ensure_bucket(s3, bucket, "us-east-1") is True
    assert ensure_bucket(s3, bucket, "us-east-1") is False
    s3.delete_bucket(Bucket=bucket)


def test_unreachable_endpoint_is_retryable_and_access_errors_are_not(
    aws_emulator: AwsEmulator, dynamodb: Any
) -> None:
    dead = make_client("dynamodb", "us-east-1", "http://127.0.0.1:9")  # discard port: refused
    with pytest.raises(RetryableError, match="unreachable"), aws_errors("probe"):
        dead.list_tables()
    with pytest.raises(ClientError), aws_errors("probe"):
        dynamodb.describe_table(TableName="does-not-exist")


def test_a_key_past_dynamodbs_limit_is_a_rejection_with_its_reason(
    dynamodb: Any, unique_id: str
) -> None:
    table = f"t-{unique_id}"
    ensure_table(dynamodb, _table(table))
    with pytest.raises(RejectedError) as caught, aws_errors(f"put {table}"):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "x" * 2049}})
    assert caught.value.code == "store_rejected"
    assert "ValidationException" in caught.value.message
    assert isinstance(caught.value.__cause__, ClientError)
