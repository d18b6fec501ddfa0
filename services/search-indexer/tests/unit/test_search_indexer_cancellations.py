"""What a cancelled TransactWriteItems says per product, as real DynamoDB answers it (botocore's
Stubber returns DynamoDB's error shapes; the emulator does not give every reason: it refuses
an over-large item or key for the whole request, and has no TransactionConflict)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from search_indexer._txn import fast_unit, outcomes_of_cancellation, target
from search_indexer.domain import Folded, Product


def _unit(pid: int) -> Any:
    change = Folded(
        pid,
        Product(pid, "Teapot", "blue", Decimal("1.00"), 1, None),
        "q" + "0" * 20 + "2" + "0" * 40,
        0,
        pid,
    )
    return fast_unit(change, "idx", target(change, None, 0)[0])


def _cancel(reasons: list[dict[str, Any]]) -> dict[str, Any]:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "transact_write_items",
            service_error_code="TransactionCanceledException",
            service_message="Transaction cancelled",
            http_status_code=400,
            response_meta={},
            modeled_fields={"CancellationReasons": reasons},
        )
        with pytest.raises(ClientError) as caught:
            client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": "idx",
                            "Key": {"pk": {"S": "a"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    }
                ]
            )
    return caught.value.response


def test_each_reason_maps_to_what_the_sink_does_with_that_product() -> None:
    stored = {
        "pk": {"S": "PRODUCT#2"},
        "sk": {"S": "PRODUCT"},
        "version": {"S": "q" + "9" * 20 + "2" + "9" * 40},
    }
    response = _cancel(
        [
            {"Code": "None"},
            {"Code": "ConditionalCheckFailed", "Message": "failed", "Item": stored},
            {
                "Code": "ValidationError",
                "Message": "Item size has exceeded the maximum allowed size",
            },
            {"Code": "TransactionConflict", "Message": "conflict"},
            {"Code": "ThrottlingError", "Message": "throttled"},
        ]
    )
    units = [_unit(pid) for pid in range(1, 6)]
    results = outcomes_of_cancellation(response, units)
    assert [r.reason for r in results] == ["resend", "reread", "refused", "retry", "retry"]
    assert results[1].stored == stored
    assert "maximum allowed size" in results[2].message


def test_a_cancellation_without_reasons_retries_every_product() -> None:
    results = outcomes_of_cancellation(
        {"Error": {"Code": "TransactionCanceledException"}}, [_unit(1), _unit(2)]
    )
    assert [r.reason for r in results] == ["retry", "retry"]
