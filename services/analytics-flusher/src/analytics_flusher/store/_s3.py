"""The lake's S3 bucket as the sink writes to it: ``S3Store`` (``_uploads.ObjectStore``) and
``open_lake``, the client for the settings' region and endpoint with the bucket checked (created
when missing) at start, retried while the endpoint comes up.

Every request goes through ``sink_kit.aws`` (the client, the error mapping), so a transient
failure is the runtime's ``RetryableError``.
"""

from __future__ import annotations

from typing import Any

import structlog
from consumer_runtime import RetryableError
from sink_kit.aws import aws_errors, ensure_bucket, make_client, retry_at_start
from sink_kit.metrics import AwsCallMetrics

from analytics_flusher.settings import FlusherSettings

__all__ = ["S3Store", "open_lake"]

_log = structlog.get_logger("analytics_flusher")


class S3Store:
    """``PutObject`` into one bucket; transient failures raise ``RetryableError``.

    ``healthy()`` answers from the outcome of the last request instead of making one: a probe
    must stay cheap and must not hang on an endpoint that accepts connections but not requests.
    """

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self._ok = True

    def put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            with aws_errors(f"put s3://{self.bucket}/{key}"):
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
                )
        except RetryableError:
            self._ok = False
            raise
        self._ok = True

    def healthy(self) -> bool:
        return self._ok


def open_lake(settings: FlusherSettings, aws_metrics: AwsCallMetrics | None = None) -> S3Store:
    """The production store: ``S3_BUCKET`` through a client for ``AWS_REGION`` and
    ``AWS_ENDPOINT_URL``, the bucket created if it does not exist; the client's calls timed
    and throttles counted in ``aws_metrics`` when given."""
    client = make_client("s3", settings.aws_region, settings.aws_endpoint_url)
    if aws_metrics is not None:
        aws_metrics.instrument(client)
    created = retry_at_start(
        lambda: ensure_bucket(client, settings.s3_bucket, settings.aws_region),
        f"checking bucket {settings.s3_bucket}",
    )
    if created:
        _log.info("created bucket", bucket=settings.s3_bucket)
    return S3Store(client, settings.s3_bucket)
