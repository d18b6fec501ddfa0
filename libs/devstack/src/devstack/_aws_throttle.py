"""What the AWS fault proxy throttles, and how AWS says so (``_aws_faults``).

Requests are classified by their head alone (``service_of``): ``X-Amz-Target:
DynamoDB_20120810.<Op>`` is ``dynamodb``, a request without ``X-Amz-Target`` is ``s3``; moto's
control API (``/moto-api/``) and other JSON targets are ``other``, never throttled. A throttled
request gets AWS's own answer (``throttle_answer``): DynamoDB
``ProvisionedThroughputExceededException`` (HTTP 400), S3 ``SlowDown`` (HTTP 503). ``Faults``
holds the throttle switch, its seeded random draws and the per-service counters, shared by the
proxy's threads.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate

THROTTLEABLE_SERVICES = frozenset({"dynamodb", "s3"})

_DYNAMODB_THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded."
        " Consider increasing your provisioning level with the UpdateTable API.",
    },
    separators=(",", ":"),
).encode()


@dataclass(frozen=True)
class Answer:
    """An HTTP response the proxy gives itself instead of forwarding."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class ProxyStats:
    """Requests per service (``dynamodb``, ``s3``, ``other``) since start or the last reset:
    forwarded to the emulator, throttled by the proxy, failed (emulator unreachable: 502)."""

    forwarded: dict[str, int]
    throttled: dict[str, int]
    failed: dict[str, int]


def service_of(path: str, target: str | None) -> str:
    """The service a request is for, from its path and ``X-Amz-Target`` header."""
    if path.startswith("/moto-api"):
        return "other"
    if target is None:
        return "s3"
    return "dynamodb" if target.startswith("DynamoDB_") else "other"


def throttle_answer(service: str) -> Answer:
    """AWS's answer to a throttled request of ``service`` (``dynamodb`` or ``s3``)."""
    date = formatdate(usegmt=True)
    if service == "dynamodb":
        request_id = uuid.uuid4().hex.upper() + uuid.uuid4().hex[:20].upper()
        headers = [
            ("x-amzn-RequestId", request_id),
            ("x-amz-crc32", str(zlib.crc32(_DYNAMODB_THROTTLED))),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Date", date),
        ]
        return Answer(400, "Bad Request", headers, _DYNAMODB_THROTTLED)
    request_id = uuid.uuid4().hex[:16].upper()
    host_id = uuid.uuid4().hex + uuid.uuid4().hex
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        "<Message>Please reduce your request rate.</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
    ).encode()
    headers = [
        ("x-amz-request-id", request_id),
        ("x-amz-id-2", host_id),
        ("Content-Type", "application/xml"),
        ("Date", date),
    ]
    return Answer(503, "Slow Down", headers, body)


class Faults:
    """The throttle switch, its seeded random draws and the counters (shared by all threads)."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._fraction = 0.0
        self._services: frozenset[str] = frozenset()
        self._counts: dict[str, Counter[str]] = {k: Counter() for k in ("fwd", "thr", "fail")}

    def throttle(self, fraction: float, services: frozenset[str], seed: int | None) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"throttle fraction must be within [0, 1], got {fraction}")
        unknown = services - THROTTLEABLE_SERVICES
        if unknown:
            raise ValueError(
                f"cannot throttle {sorted(unknown)}: choose from {sorted(THROTTLEABLE_SERVICES)}"
            )
        with self._lock:
            if seed is not None:
                self._rng = random.Random(seed)
            self._fraction, self._services = fraction, services

    def should_throttle(self, service: str) -> bool:
        with self._lock:
            # Draw only for requests the throttle covers: the sequence of decisions for those
            # requests then depends on the seed alone.
            if service not in self._services or self._fraction <= 0.0:
                return False
            return self._rng.random() < self._fraction

    def count(self, kind: str, service: str) -> None:
        with self._lock:
            self._counts[kind][service] += 1

    def stats(self, reset: bool) -> ProxyStats:
        with self._lock:
            stats = ProxyStats(*(dict(self._counts[k]) for k in ("fwd", "thr", "fail")))
            if reset:
                for counter in self._counts.values():
                    counter.clear()
        return stats
