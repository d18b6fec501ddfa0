"""The DynamoDB clients of the index: one for the writes and point reads (short timeouts, no
retries inside botocore), one for the sweep's whole-table scans (a long read timeout)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

__all__ = ["SCAN_READ_TIMEOUT_S", "make_dynamodb_client"]

_CLIENT_CONFIG = Config(
    # Every call here is a single-item write or a small read that DynamoDB answers in
    # milliseconds; one that has not answered in 2 s is stuck behind an unreachable or
    # overloaded endpoint. Failing it fast hands the batch to the runtime's backoff, which
    # pauses the partitions and keeps the member in its group, instead of holding the batch
    # for sink_kit's generic 10 s x 3 budget.
    connect_timeout=2,
    read_timeout=2,
    # No retries inside botocore: a timed-out request may still be applied later, and every
    # copy in flight is one more stale write racing the next attempt. The runtime retries the
    # whole (idempotent) batch with backoff instead. (``total_max_attempts`` counts the first
    # request; botocore's ``max_attempts`` counts retries, so 1 there would send two copies.)
    retries={"mode": "standard", "total_max_attempts": 1},
    # The write pool (WRITE_CONCURRENCY <= 32) shares this client's connections.
    max_pool_connections=32,
    # No client-side walk of every request against the API model: the items are built by
    # ``_items`` and DynamoDB validates every request anyway (a refusal is a
    # ValidationException, which the sink maps to the record). The walk was ~40 % of the
    # client's time per transaction item (about 1.8 ms per 100-item request).
    parameter_validation=False,
)


#: A sweep's scan pages read every item of the table (postings included) to return the few
#: product items below the sweep: far more work per call than the writes above. DynamoDB
#: answers a 1 MB page in well under a second; an emulator holding every posting in one process
#: can take seconds, and a 2 s timeout would then retry the sweep for ever.
SCAN_READ_TIMEOUT_S = 60
_SCAN_CONFIG = _CLIENT_CONFIG.merge(Config(read_timeout=SCAN_READ_TIMEOUT_S))


def make_dynamodb_client(
    region: str | None = None, endpoint_url: str | None = None, *, scans: bool = False
) -> Any:
    """A DynamoDB client (thread-safe) for AWS, LocalStack or the emulator; ``scans``: with
    the read timeout of a sweep's scan pages (``SCAN_READ_TIMEOUT_S``)."""
    session = boto3.session.Session(region_name=region)
    config = _SCAN_CONFIG if scans else _CLIENT_CONFIG
    return session.client("dynamodb", endpoint_url=endpoint_url or None, config=config)
