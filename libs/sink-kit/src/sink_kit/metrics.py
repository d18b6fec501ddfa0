"""Prometheus figures of the storage clients every sink shares: the latency and throttling of
each AWS call, and the use of each SQLAlchemy connection pool.

They go into the registry a sink serves on the runtime's ``/metrics`` (its
``metrics_registry``), under the platform's names (``cdc_`` prefix, a ``service`` label), so
one dashboard and one set of alerts reads every service:

- ``AwsCallMetrics(registry, service).instrument(client)`` hooks botocore's events of a boto3
  client: ``before-call``/``after-call`` time each API call (botocore's own retries included,
  as the caller waits for them), ``needs-retry`` sees every attempt's answer and counts the
  throttled ones (an attempt botocore retries by itself is counted too, which is the point:
  throttling is a capacity signal before it becomes an error).
- ``PoolCollector(engine, service, pool)`` reads the pool's checked-out connections and its
  limit (``pool_size + max_overflow``) at scrape time: nothing to update on the write path.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

__all__ = ["AWS_CALL_SECONDS", "AWS_THROTTLES", "THROTTLE_CODES", "AwsCallMetrics", "PoolCollector"]

AWS_CALL_SECONDS: Final = "cdc_aws_call_duration_seconds"
AWS_THROTTLES: Final = "cdc_aws_throttles_total"

#: Error codes AWS answers a request it sheds for capacity with (DynamoDB, S3, the control
#: plane); botocore's standard retry mode treats the same codes as throttling.
THROTTLE_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)

# A DynamoDB item write answers in milliseconds, an S3 upload of a window part or a sweep's
# scan page in seconds; a call past 10 s is an outage (the clients' read timeouts).
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_START = "cdc_call_started"  # key of the call's start time in botocore's request context


class AwsCallMetrics:
    """Latency of every API call and throttled attempts of boto3 clients, by AWS service and
    operation, in ``registry``."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.seconds = Histogram(
            AWS_CALL_SECONDS,
            "Duration of one AWS API call as its caller waits for it (botocore's own retries "
            "included), by AWS service and operation.",
            ["service", "aws_service", "operation"],
            buckets=_CALL_BUCKETS,
            registry=registry,
        )
        self.throttles = Counter(
            AWS_THROTTLES,
            "AWS request attempts answered with a throttling error (ThrottlingException, "
            "ProvisionedThroughputExceededException, SlowDown, ...), by AWS service and "
            "operation; attempts botocore retried by itself included.",
            ["service", "aws_service", "operation"],
            registry=registry,
        )

    def instrument(self, client: Any) -> Any:
        """Hook this client's events (the client's own event system: other clients are not
        touched); returns the client."""
        events = client.meta.events
        aws = client.meta.service_model.service_name
        events.register("before-call", _start)
        events.register("after-call", self._make_done(aws))
        events.register("after-call-error", self._make_done(aws))
        events.register("needs-retry", self._make_retry_seen(aws))
        return client

    def _make_done(self, aws: str) -> Any:
        # ``after-call`` passes the model, ``after-call-error`` (a connection error, a timeout)
        # does not: the operation comes from the context ``before-call`` filled.
        def done(*, context: dict[str, Any], **_: Any) -> None:
            started = context.pop(_START, None)
            if started is not None:
                elapsed = time.perf_counter() - started[0]
                self.seconds.labels(self.service, aws, started[1]).observe(elapsed)

        return done

    def _make_retry_seen(self, aws: str) -> Any:
        def retry_seen(*, response: Any = None, operation: Any = None, **_: Any) -> None:
            # ``response`` is (http response, parsed body) or None after a connection error.
            if response is None or operation is None:
                return
            parsed = response[1] if len(response) > 1 else None
            code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
            if code in THROTTLE_CODES:
                self.throttles.labels(self.service, aws, operation.name).inc()
            # None: this handler never decides whether botocore retries.

        return retry_seen


def _start(*, model: Any, context: dict[str, Any], **_: Any) -> None:
    context[_START] = (time.perf_counter(), model.name)


class PoolCollector(Collector):
    """``cdc_db_pool_checked_out`` and ``cdc_db_pool_size`` of one engine's pool, read when
    scraped. ``size`` is the most connections the pool hands out at once (``pool_size +
    max_overflow``; a caller past it waits up to the pool timeout, then fails as an outage)."""

    def __init__(self, engine: Engine, service: str, pool: str = "sink") -> None:
        self._engine = engine
        self._labels = [service, pool]

    def collect(self) -> Iterable[Metric]:
        pool: Any = self._engine.pool
        checked_out = GaugeMetricFamily(
            "cdc_db_pool_checked_out",
            "Database connections checked out of the pool now (in use by the sink).",
            labels=["service", "pool"],
        )
        size = GaugeMetricFamily(
            "cdc_db_pool_size",
            "Most connections the pool hands out at once (pool_size + max_overflow).",
            labels=["service", "pool"],
        )
        checked_out.add_metric(self._labels, float(pool.checkedout()))
        size.add_metric(
            self._labels, float(pool.size() + max(getattr(pool, "_max_overflow", 0), 0))
        )
        return [checked_out, size]

    def describe(self) -> Iterable[Metric]:
        return self.collect()
