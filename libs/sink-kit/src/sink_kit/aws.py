"""AWS building blocks for the DynamoDB and S3 sinks (AWS, LocalStack or the moto emulator).

Clients honour ``AWS_ENDPOINT_URL`` (set by the dev stack and docker compose, unset on AWS where
the default credential chain and EKS Pod Identity apply). Throttling, 5xx and connection
failures surface as the runtime's ``RetryableError``; access or validation errors propagate,
because retrying cannot fix a missing permission or a malformed request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from consumer_runtime import RejectedError, RetryableError

T = TypeVar("T")
_log = structlog.get_logger("sink_kit.aws")

__all__ = [
    "REJECTED_ERROR_CODES",
    "RETRYABLE_ERROR_CODES",
    "START_BUDGET_S",
    "aws_errors",
    "ensure_bucket",
    "ensure_table",
    "error_code",
    "make_client",
    "put_if_newer",
    "retry_at_start",
]

RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

#: A request refused because of the values it carries: retrying cannot help, the record can.
REJECTED_ERROR_CODES = frozenset({"ValidationException"})

_CLIENT_CONFIG = Config(
    # botocore's own retries absorb short blips; longer outages reach the runtime's backoff.
    retries={"mode": "standard", "max_attempts": 3},
    # Fail a call within ~10 s on a dead endpoint instead of hanging a batch.
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=32,
)


# Replicas starting while AWS is unreachable or throttling (a rebalance during an outage): keep
# trying their start-up calls for this long before giving up (the orchestrator restarts them).
START_BUDGET_S = 120.0


def retry_at_start(fn: Callable[[], T], what: str, budget_s: float = START_BUDGET_S) -> T:
    """``fn()`` retried on ``RetryableError`` with backoff (0.5 s doubling to 5 s) until
    ``budget_s`` passed: a service that starts during an outage waits for it instead of
    exiting at once."""
    deadline = time.monotonic() + budget_s
    delay = 0.5
    while True:
        try:
            return fn()
        except RetryableError as exc:
            if time.monotonic() + delay > deadline:
                raise
            _log.warning(f"{what} failed at start; retrying", error=str(exc), delay_s=delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def make_client(
    service: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Any:
    """A boto3 client; ``endpoint_url`` points at LocalStack or the emulator when set.

    ``env``: the ``AWS_REGION`` / ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` of another
    process's environment (a dev stack's, read by its verifiers) instead of this one's; its
    region applies when ``region`` is not given (us-east-1 when neither is).
    """
    if env is not None:
        session = boto3.session.Session(
            region_name=region or env.get("AWS_REGION", "us-east-1"),
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        )
    else:
        session = boto3.session.Session(region_name=region)
    return session.client(service, endpoint_url=endpoint_url or None, config=_CLIENT_CONFIG)  # type: ignore[call-overload]


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Map transient AWS failures to ``RetryableError`` and a request AWS refuses for good
    because of what it carries (``ValidationException``: a key or item past DynamoDB's limits)
    to ``RejectedError``, so the runtime isolates the record and dead-letters it with AWS's
    reason. Access errors and missing resources propagate."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in RETRYABLE_ERROR_CODES or status >= 500:
            raise RetryableError(f"{what}: {code or status} from AWS") from exc
        if code in REJECTED_ERROR_CODES:
            message = str(exc.response.get("Error", {}).get("Message", ""))[:1000]
            raise RejectedError(f"{what}: {code} from AWS: {message}") from exc
        raise
    except (
        EndpointConnectionError,
        ConnectionClosedError,
        ConnectTimeoutError,
        ReadTimeoutError,
    ) as exc:
        raise RetryableError(f"{what}: AWS endpoint unreachable ({exc})") from exc
    except BotoCoreError as exc:
        if "connect" in type(exc).__name__.lower() or "timeout" in type(exc).__name__.lower():
            raise RetryableError(f"{what}: {exc}") from exc
        raise


def put_if_newer(
    client: Any, table: str, item: Mapping[str, Any], version_attr: str = "version"
) -> bool:
    """``PutItem`` only if the stored item is older (or absent): an older event never
    overwrites a newer one. ``item`` is in DynamoDB's typed form and carries ``version_attr``
    (a number, or text of one fixed width such as ``cdc_events.source_version``; DynamoDB
    compares either). Returns False when a newer (or equal) version is stored: counted, not an
    error.
    """
    with aws_errors(f"put {table}"):
        try:
            client.put_item(
                TableName=table,
                Item=dict(item),
                ConditionExpression="attribute_not_exists(#v) OR #v < :v",
                ExpressionAttributeNames={"#v": version_attr},
                ExpressionAttributeValues={":v": item[version_attr]},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
    return True


def ensure_table(client: Any, definition: Mapping[str, Any], timeout_s: float = 60.0) -> bool:
    """Create the table from its ``CreateTable`` definition if missing; True if created."""
    name = definition["TableName"]
    with aws_errors(f"describe {name}"):
        try:
            client.describe_table(TableName=name)
            return False
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        try:
            client.create_table(**definition)
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":  # another replica won the race
                raise
        deadline = time.monotonic() + timeout_s
        while client.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise RetryableError(f"table {name} not ACTIVE after {timeout_s:.0f}s")
            time.sleep(0.5)
    return True


def ensure_bucket(client: Any, bucket: str, region: str | None = None) -> bool:
    """Create the bucket if missing (dev and compose; Terraform owns it in production)."""
    with aws_errors(f"head bucket {bucket}"):
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            client.create_bucket(**kwargs)
        except ClientError as exc:
            if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
    return True
