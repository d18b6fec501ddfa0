"""The throttling proxy against the real moto server: transparent when off, AWS's own throttling
answers when on, as botocore and sink-kit's error mapping see them."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from consumer_runtime import RetryableError
from devstack import AWS_TEST_ENV, AwsEmulator, ThrottlingProxy
from sink_kit.aws import aws_errors, error_code

FIVE_MB = 5 * 1024 * 1024


def _client(service: str, url: str) -> Any:
    # One attempt, so an error surfaces at once and the proxy's counters match the calls made
    # (botocore reads Config's `max_attempts` as retries: 1 would mean two attempts).
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=url,
        region_name=AWS_TEST_ENV["AWS_REGION"],
        aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def proxy(aws_emulator: AwsEmulator) -> Iterator[ThrottlingProxy]:
    with ThrottlingProxy(aws_emulator.endpoint_url, seed=7) as proxy:
        yield proxy


@pytest.fixture
def dynamodb(proxy: ThrottlingProxy) -> Any:
    return _client("dynamodb", proxy.url)


@pytest.fixture
def s3(proxy: ThrottlingProxy) -> Any:
    return _client("s3", proxy.url)


@pytest.fixture
def table(aws_emulator: AwsEmulator, unique_id: str) -> Iterator[str]:
    """A fresh table, made and dropped directly on the emulator (whatever the proxy does)."""
    name = f"faults-{unique_id}"
    dynamodb = _client("dynamodb", aws_emulator.endpoint_url)
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    yield name
    dynamodb.delete_table(TableName=name)


def _conditional_put(client: Any, table: str) -> ClientError:
    with pytest.raises(ClientError) as caught:
        client.put_item(
            TableName=table,
            Item={"pk": {"S": "p1"}, "v": {"N": "1"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    return caught.value


def test_dynamodb_through_the_proxy_is_unchanged(
    proxy: ThrottlingProxy, dynamodb: Any, table: str, aws_emulator: AwsEmulator
) -> None:
    item = {"pk": {"S": "p1"}, "v": {"N": "5"}, "text": {"S": "naïve café ☕"}}
    dynamodb.put_item(TableName=table, Item=item)
    assert dynamodb.get_item(TableName=table, Key={"pk": {"S": "p1"}})["Item"] == item

    through_proxy = _conditional_put(dynamodb, table)
    direct = _conditional_put(_client("dynamodb", aws_emulator.endpoint_url), table)
    assert error_code(through_proxy) == "ConditionalCheckFailedException"
    assert through_proxy.response["Error"] == direct.response["Error"]
    assert through_proxy.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    stats = proxy.stats()
    assert stats.forwarded == {"dynamodb": 3}  # put, get, conditional put
    assert stats.throttled == {}


def test_s3_through_the_proxy_is_byte_exact(
    proxy: ThrottlingProxy, s3: Any, unique_id: str
) -> None:
    bucket = f"faults-{unique_id}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(FIVE_MB)
    s3.put_object(Bucket=bucket, Key="bytes", Body=body)
    # A file-like body makes botocore send "Expect: 100-continue" and wait for it.
    s3.put_object(Bucket=bucket, Key="file", Body=io.BytesIO(body))
    for key in ("bytes", "file"):
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body
        assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    assert s3.head_object(Bucket=bucket, Key="file")["ContentLength"] == FIVE_MB
    ranged = s3.get_object(Bucket=bucket, Key="bytes", Range="bytes=100-199")
    assert ranged["Body"].read() == body[100:200]
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="absent")
    assert error_code(missing.value) == "NoSuchKey"

    for key in ("bytes", "file"):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    assert proxy.stats().throttled == {}


def test_a_chunked_request_body_is_relayed_verbatim(
    proxy: ThrottlingProxy, s3: Any, unique_id: str
) -> None:
    bucket = f"faults-{unique_id}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(200_000)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    # moto does not check signatures: an unsigned PUT stands for any client that streams.
    conn.request(
        "PUT", f"/{bucket}/chunked", body=iter([body[:70_000], body[70_000:]]), encode_chunked=True
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 200
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == body
    s3.delete_object(Bucket=bucket, Key="chunked")
    s3.delete_bucket(Bucket=bucket)


def test_a_full_throttle_answers_as_aws_does(
    proxy: ThrottlingProxy, dynamodb: Any, s3: Any, table: str, s3_bucket: str
) -> None:
    proxy.throttle(1.0)
    with pytest.raises(ClientError) as ddb:
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "p1"}})
    assert error_code(ddb.value) == "ProvisionedThroughputExceededException"
    assert ddb.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "provisioned throughput" in ddb.value.response["Error"]["Message"]

    for body in (b"x" * 1000, io.BytesIO(b"y" * 1000)):  # the second expects "100 Continue"
        with pytest.raises(ClientError) as slow:
            s3.put_object(Bucket=s3_bucket, Key="k", Body=body)
        assert error_code(slow.value) == "SlowDown"
        assert slow.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert slow.value.response["Error"]["Message"] == "Please reduce your request rate."

    throughput = "ProvisionedThroughputExceededException"
    with pytest.raises(RetryableError, match=throughput), aws_errors("get"):
        dynamodb.get_item(TableName=table, Key={"pk": {"S": "p1"}})
    with pytest.raises(RetryableError, match="SlowDown"), aws_errors("put"):
        s3.put_object(Bucket=s3_bucket, Key="k", Body=b"z")

    stats = proxy.stats()
    assert stats.throttled == {"dynamodb": 2, "s3": 3}
    proxy.clear()
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "p1"}})
    s3.put_object(Bucket=s3_bucket, Key="k", Body=io.BytesIO(b"after"))
    assert s3.get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"after"
    assert proxy.stats().throttled == stats.throttled


def test_only_the_chosen_service_is_throttled(
    proxy: ThrottlingProxy, dynamodb: Any, s3: Any, table: str, s3_bucket: str
) -> None:
    proxy.throttle(1.0, {"s3"})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "p1"}})
    with pytest.raises(ClientError, match="SlowDown"):
        s3.put_object(Bucket=s3_bucket, Key="k", Body=b"x")
    proxy.throttle(1.0, {"dynamodb"})
    s3.put_object(Bucket=s3_bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "p1"}})


def _throttled_pattern(dynamodb: Any, table: str, calls: int) -> list[bool]:
    codes = []
    for _ in range(calls):
        try:
            dynamodb.get_item(TableName=table, Key={"pk": {"S": "p1"}})
            codes.append("")
        except ClientError as exc:
            codes.append(error_code(exc))
    assert set(codes) <= {"", "ProvisionedThroughputExceededException"}
    return [code != "" for code in codes]


def test_a_half_throttle_is_seeded_and_clear_ends_it(
    proxy: ThrottlingProxy, dynamodb: Any, table: str
) -> None:
    proxy.stats(reset=True)
    proxy.throttle(0.5, seed=1234)
    first = _throttled_pattern(dynamodb, table, 200)
    # Binomial(200, 0.5): mean 100, sd ~7; the seed fixes the outcome anyway.
    assert 70 <= sum(first) <= 130
    assert proxy.stats().throttled == {"dynamodb": sum(first)}
    assert proxy.stats().forwarded == {"dynamodb": 200 - sum(first)}

    proxy.throttle(0.5, seed=1234)
    assert _throttled_pattern(dynamodb, table, 200) == first  # same seed, same faults

    proxy.clear()
    assert _throttled_pattern(dynamodb, table, 50) == [False] * 50


def test_concurrent_clients_keep_their_connections(
    proxy: ThrottlingProxy, table: str, aws_emulator: AwsEmulator
) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        client = _client("dynamodb", proxy.url)
        try:
            for i in range(25):
                client.put_item(TableName=table, Item={"pk": {"S": f"w{n}-{i}"}})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    direct = _client("dynamodb", aws_emulator.endpoint_url)
    assert direct.scan(TableName=table, Select="COUNT")["Count"] == 100


def test_a_stopped_proxy_is_an_unreachable_endpoint(aws_emulator: AwsEmulator) -> None:
    proxy = ThrottlingProxy(aws_emulator.endpoint_url).start()
    client = _client("dynamodb", proxy.url)
    client.list_tables()  # a kept-alive connection is open
    proxy.stop()
    # A connection error, not an answer: the kept-alive connection was closed, then refused.
    with pytest.raises(RetryableError, match="unreachable"), aws_errors("list"):
        client.list_tables()
    with pytest.raises(EndpointConnectionError):
        client.list_tables()


class _ScriptedUpstream:
    """A raw HTTP server on loopback that gives canned answers in turn and records the raw
    requests: the framings moto never sends (chunked with trailers, close-delimited), and a
    kept-alive connection it closes between requests."""

    def __init__(self, answers: list[bytes], close_after: set[int] = frozenset()) -> None:
        self.answers, self.close_after = answers, close_after
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            conn, _ = self.sock.accept()
            with conn, conn.makefile("rb") as rfile:
                while self.answers:
                    head = b"".join(iter(rfile.readline, b"\r\n"))
                    if not head:
                        break
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
                    self.requests.append(head + b"\r\n" + rfile.read(length))
                    conn.sendall(self.answers.pop(0))
                    if len(self.requests) in self.close_after or b"Connection: close" in head:
                        break
        self.sock.close()


def _raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b""))


def test_framings_are_relayed_verbatim() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"
    )
    head_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end"
    upstream = _ScriptedUpstream([chunked, head_answer, until_close], close_after={1})
    request = (
        b"PUT /b/k HTTP/1.1\r\nHost: s3.amazonaws.com\r\nX-Odd:  spaced\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    )
    with ThrottlingProxy(upstream.url) as proxy:
        raw = _raw_exchange(
            proxy.port,
            request
            + b"HEAD /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
            + b"GET /b/k HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        )
        assert proxy.stats().forwarded == {"s3": 3}
    # The request head goes upstream byte for byte; the chunked answer comes back byte for byte
    # (extensions, trailers); the HEAD is retried on a new connection (the upstream closed the
    # kept-alive one) and has no body; the last answer is delimited by the close.
    assert upstream.requests[0] == request
    assert len(upstream.requests) == 3
    assert raw == chunked + head_answer + until_close
