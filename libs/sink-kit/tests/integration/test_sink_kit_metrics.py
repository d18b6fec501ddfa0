"""The storage clients' figures: AWS call latency against the emulator, throttled attempts
against a real HTTP server answering like a throttling DynamoDB, pool use against PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from devstack import AwsEmulator
from devstack.pytest_plugin import SinkSchema
from prometheus_client import CollectorRegistry
from sink_kit.aws import make_client
from sink_kit.metrics import AWS_CALL_SECONDS, AWS_THROTTLES, AwsCallMetrics, PoolCollector
from sink_kit.postgres import make_engine
from sqlalchemy import text


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_every_aws_call_is_timed_by_service_and_operation(
    aws_emulator: AwsEmulator, aws_env: dict[str, str]
) -> None:
    registry = CollectorRegistry()
    metrics = AwsCallMetrics(registry, "test-service")
    client = metrics.instrument(make_client("dynamodb", "us-east-1", aws_emulator.endpoint_url))
    other = make_client("dynamodb", "us-east-1", aws_emulator.endpoint_url)  # not instrumented
    for _ in range(3):
        client.list_tables()
    other.list_tables()
    with pytest.raises(ClientError):
        client.describe_table(TableName="does-not-exist")
    # A call that never got an answer (connection refused) is timed too.
    dead = metrics.instrument(make_client("dynamodb", "us-east-1", "http://127.0.0.1:9"))
    with pytest.raises(EndpointConnectionError):
        dead.describe_table(TableName="t")
    labels = {"service": "test-service", "aws_service": "dynamodb"}
    assert _sample(registry, f"{AWS_CALL_SECONDS}_count", **labels, operation="ListTables") == 3
    # A call answered with an error is timed too.
    assert _sample(registry, f"{AWS_CALL_SECONDS}_count", **labels, operation="DescribeTable") == 2
    assert _sample(registry, f"{AWS_CALL_SECONDS}_sum", **labels, operation="ListTables") > 0
    assert _sample(registry, f"{AWS_THROTTLES}", **labels, operation="ListTables") == 0


class _Throttling(BaseHTTPRequestHandler):
    """Answers every request as a DynamoDB that sheds load does."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (
            b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
            b'"message":"Rate of requests exceeds the allowed throughput."}'
        )
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def throttling_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_throttled_attempts_are_counted_each_including_botocores_own_retries(
    throttling_endpoint: str, aws_env: dict[str, str]
) -> None:
    registry = CollectorRegistry()
    metrics = AwsCallMetrics(registry, "test-service")
    # sink-kit's clients retry by themselves (standard mode; botocore's ``max_attempts`` 3
    # counts retries: four attempts in all, a few seconds of backoff).
    client: Any = metrics.instrument(make_client("dynamodb", "us-east-1", throttling_endpoint))
    with pytest.raises(ClientError, match="ThrottlingException"):
        client.put_item(TableName="t", Item={"pk": {"S": "1"}})
    labels = {"service": "test-service", "aws_service": "dynamodb", "operation": "PutItem"}
    assert _sample(registry, AWS_THROTTLES, **labels) == 4
    assert _sample(registry, f"{AWS_CALL_SECONDS}_count", **labels) == 1


def test_pool_use_is_read_when_scraped(sink_schema: SinkSchema) -> None:
    engine = make_engine(sink_schema.url, pool_size=2, max_overflow=1)
    registry = CollectorRegistry()
    registry.register(PoolCollector(engine, "test-service"))
    labels = {"service": "test-service", "pool": "sink"}
    try:
        assert _sample(registry, "cdc_db_pool_size", **labels) == 3
        assert _sample(registry, "cdc_db_pool_checked_out", **labels) == 0
        with engine.connect() as a, engine.connect() as b:
            a.execute(text("SELECT 1"))
            b.execute(text("SELECT 1"))
            assert _sample(registry, "cdc_db_pool_checked_out", **labels) == 2
        assert _sample(registry, "cdc_db_pool_checked_out", **labels) == 0
    finally:
        engine.dispose()
