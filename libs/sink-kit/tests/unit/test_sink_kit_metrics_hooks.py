"""The storage clients' figures without a store: ``AwsCallMetrics``' hooks fed the events a
boto3 client emits around a call (a real client's event system; nothing is sent), and
``PoolCollector`` reading an engine's pool (created, never connected)."""

from __future__ import annotations

from typing import Any

import boto3
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from sink_kit.metrics import AWS_CALL_SECONDS, AWS_THROTTLES, AwsCallMetrics, PoolCollector

LABELS = {"service": "indexer", "aws_service": "dynamodb", "operation": "PutItem"}


def _client() -> Any:
    return boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).client("dynamodb", endpoint_url="http://127.0.0.1:1")


def _call(client: Any, outcome: str, response: Any) -> None:
    """The events botocore emits for one PutItem attempt answered with ``response``."""
    model = client.meta.service_model.operation_model("PutItem")
    events = client.meta.events
    context: dict[str, Any] = {}
    events.emit("before-call.dynamodb.PutItem", model=model, params={}, context=context)
    events.emit(
        "needs-retry.dynamodb.PutItem",
        response=response,
        endpoint=None,
        operation=model,
        attempts=1,
        caught_exception=None,
        request_dict={"context": {}},
    )
    events.emit(f"{outcome}.dynamodb.PutItem", model=model, context=context, http_response=None,
                parsed={}, exception=None)  # fmt: skip


def test_each_call_is_timed_and_throttled_attempts_counted() -> None:
    registry = CollectorRegistry()
    client = AwsCallMetrics(registry, "indexer").instrument(_client())
    throttled = (None, {"Error": {"Code": "ProvisionedThroughputExceededException"}})
    _call(client, "after-call", (None, {}))
    _call(client, "after-call", throttled)
    _call(client, "after-call-error", None)  # a connection error: no answer to classify
    _call(client, "after-call", (None, {"Error": {"Code": "ValidationException"}}))
    count = registry.get_sample_value(f"{AWS_CALL_SECONDS}_count", LABELS)
    assert count == 4  # every call timed, the failed one too
    assert registry.get_sample_value(AWS_THROTTLES, LABELS) == 1


def test_a_call_without_its_start_is_not_timed() -> None:
    registry = CollectorRegistry()
    client = AwsCallMetrics(registry, "indexer").instrument(_client())
    model = client.meta.service_model.operation_model("PutItem")
    client.meta.events.emit(
        "after-call.dynamodb.PutItem", model=model, context={}, http_response=None, parsed={}
    )
    assert registry.get_sample_value(f"{AWS_CALL_SECONDS}_count", LABELS) is None


def test_the_pool_collector_reads_the_pools_use_and_limit_when_scraped() -> None:
    engine = sa.create_engine(
        "postgresql+psycopg2://u:p@127.0.0.1:1/db", pool_size=3, max_overflow=2
    )
    registry = CollectorRegistry()
    registry.register(PoolCollector(engine, "writer", "events"))
    labels = {"service": "writer", "pool": "events"}
    assert registry.get_sample_value("cdc_db_pool_size", labels) == 5
    assert registry.get_sample_value("cdc_db_pool_checked_out", labels) == 0
    engine.dispose()
