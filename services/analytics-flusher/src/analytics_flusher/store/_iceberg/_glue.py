"""What is particular to the AWS Glue Data Catalog as the lake's catalog (``_catalog``,
``CatalogConfig.kind == "glue"``): the Glue client's properties, and which botocore errors mean
that Glue is unavailable for now (the runtime's ``RetryableError``) or that the role may not do
what was asked.

pyiceberg's ``GlueCatalog`` keeps each table's current metadata location in a Glue table's
parameters and commits with ``UpdateTable(..., VersionId=<the version it read>)``: Glue refuses
the update if the table changed since (``ConcurrentModificationException``, which pyiceberg
turns into ``CommitFailedException``), so ``_commit``'s pinned commit is as atomic on Glue as
the SQL catalog's conditional ``UPDATE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

if TYPE_CHECKING:
    from analytics_flusher.store._iceberg._catalog import CatalogConfig

__all__ = ["access_denied", "client_properties", "unavailable"]

# The Glue client's retries of one request (botocore's standard mode: throttling, 5xx and
# connection errors, with exponential backoff capped at 20 s). pyiceberg's default of 10 could
# hold a batch for minutes; 3 ride out a blip within seconds, then the runtime's own backoff
# (RetryableError, see ``unavailable``) takes over with the batch paused, not hung.
_GLUE_MAX_RETRIES: Final = 3

#: Error codes of a Glue (or any AWS JSON API) response that say "not now": throttling and
#: server-side failures. Anything else (AccessDenied, EntityNotFound, InvalidInput, ...) is an
#: answer, not an outage.
_UNAVAILABLE_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServiceException",
        "InternalError",
        "OperationTimeoutException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_ACCESS_DENIED_CODES: Final = frozenset({"AccessDenied", "AccessDeniedException"})


def client_properties(config: CatalogConfig) -> dict[str, str | int]:
    """``GlueCatalog``'s client properties: the region, the credentials when the environment
    has keys (else boto3's default chain: on EKS, the pod's role), and with an emulator its
    endpoint."""
    optional = {
        "glue.region": config.region,
        "glue.endpoint": config.endpoint_url,
        "glue.access-key-id": config.access_key_id,
        "glue.secret-access-key": config.secret_access_key,
        "glue.session-token": config.session_token,
    }
    props: dict[str, str | int] = {key: value for key, value in optional.items() if value}
    props["glue.max-retries"] = _GLUE_MAX_RETRIES
    return props


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def unavailable(exc: BotoCoreError | ClientError) -> bool:
    """True if ``exc`` says Glue could not answer now: no connection or a timeout (botocore's
    ``ConnectionError`` family: ``EndpointConnectionError``, ``ConnectTimeoutError``, ...;
    ``HTTPClientError``: ``ReadTimeoutError``, a closed connection), or a response with a
    throttling or server-side failure code or status 5xx."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return _code(exc) in _UNAVAILABLE_CODES or status >= 500
    return isinstance(exc, BotoConnectionError | HTTPClientError)


def access_denied(exc: ClientError) -> bool:
    return _code(exc) in _ACCESS_DENIED_CODES
