"""The throttling proxy's pure parts: which service a request is for, the answers it gives
(parsed by botocore's own response parsers), and its seeded decisions."""

from __future__ import annotations

import json
import zlib
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser
from devstack._aws_throttle import (
    THROTTLEABLE_SERVICES,
    Answer,
    Faults,
    service_of,
    throttle_answer,
)


@pytest.mark.parametrize(
    ("path", "target", "service"),
    [
        ("/", "DynamoDB_20120810.PutItem", "dynamodb"),
        ("/", "DynamoDB_20120810.TransactWriteItems", "dynamodb"),
        ("/bucket/key?uploads", None, "s3"),
        ("/", None, "s3"),  # ListBuckets
        ("/moto-api/reset", None, "other"),
        ("/", "AmazonSQS.SendMessage", "other"),
    ],
)
def test_requests_are_classified_by_target_header(
    path: str, target: str | None, service: str
) -> None:
    assert service_of(path, target) == service


def _parse(answer: Answer, service: str, operation: str) -> dict[str, Any]:
    model = botocore.session.get_session().get_service_model(service)
    parser = create_parser(model.metadata["protocol"])
    response = {
        "status_code": answer.status,
        "headers": {k.lower(): v for k, v in answer.headers},
        "body": answer.body,
    }
    return dict(parser.parse(response, model.operation_model(operation).output_shape))


def test_dynamodb_answer_is_provisioned_throughput_exceeded() -> None:
    answer = throttle_answer("dynamodb")
    parsed = _parse(answer, "dynamodb", "PutItem")
    assert answer.status == 400
    assert parsed["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert parsed["Error"]["Message"].startswith("The level of configured provisioned throughput")
    headers = dict(answer.headers)
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert headers["x-amz-crc32"] == str(zlib.crc32(answer.body))  # botocore may check it
    assert json.loads(answer.body)["__type"] == (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    )
    assert parsed["ResponseMetadata"]["RequestId"] == headers["x-amzn-RequestId"]


def test_s3_answer_is_slow_down() -> None:
    answer = throttle_answer("s3")
    parsed = _parse(answer, "s3", "PutObject")
    assert answer.status == 503
    assert parsed["Error"]["Code"] == "SlowDown"
    assert parsed["Error"]["Message"] == "Please reduce your request rate."
    assert dict(answer.headers)["Content-Type"] == "application/xml"
    assert answer.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Error>')
    assert parsed["ResponseMetadata"]["RequestId"] == dict(answer.headers)["x-amz-request-id"]


def _decisions(faults: Faults, services: list[str]) -> list[bool]:
    return [faults.should_throttle(s) for s in services]


def test_decisions_depend_on_the_seed_only() -> None:
    faults = Faults(seed=None)
    faults.throttle(0.5, THROTTLEABLE_SERVICES, seed=99)
    first = _decisions(faults, ["dynamodb"] * 500)
    assert 200 < sum(first) < 300
    # Requests the throttle does not cover draw nothing: interleaving them changes nothing.
    faults.throttle(0.5, frozenset({"dynamodb"}), seed=99)
    mixed = _decisions(faults, ["s3", "other", "dynamodb"] * 500)
    assert mixed[2::3] == first
    assert not any(mixed[0::3]) and not any(mixed[1::3])


def test_full_none_and_cleared_throttles() -> None:
    faults = Faults(seed=1)
    assert not any(_decisions(faults, ["dynamodb", "s3"] * 10))  # off at start
    faults.throttle(1.0, THROTTLEABLE_SERVICES, seed=None)
    assert all(_decisions(faults, ["dynamodb", "s3"] * 10))
    assert not any(_decisions(faults, ["other"] * 10))
    faults.throttle(0.0, THROTTLEABLE_SERVICES, seed=None)
    assert not any(_decisions(faults, ["dynamodb", "s3"] * 10))


@pytest.mark.parametrize(
    ("fraction", "services", "message"),
    [(1.5, {"s3"}, "within"), (-0.1, {"s3"}, "within"), (0.5, {"sqs"}, "cannot throttle")],
)
def test_bad_throttles_are_refused(fraction: float, services: set[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults(seed=1).throttle(fraction, frozenset(services), seed=None)


def test_counters_reset_on_demand() -> None:
    faults = Faults(seed=1)
    faults.count("fwd", "s3")
    faults.count("thr", "dynamodb")
    stats = faults.stats(reset=True)
    assert (stats.forwarded, stats.throttled, stats.failed) == ({"s3": 1}, {"dynamodb": 1}, {})
    assert faults.stats(reset=False).forwarded == {}
