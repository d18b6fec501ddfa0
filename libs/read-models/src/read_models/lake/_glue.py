"""What is particular to the AWS Glue Data Catalog as the lake's catalog
(``CatalogConfig.kind == "glue"``): which botocore errors mean that Glue is unavailable for now
(the flusher's ``RetryableError``, the query API's 503) or that the role may not do what was
asked. The Glue client's properties are ``_config``'s.

pyiceberg's ``GlueCatalog`` keeps each table's current metadata location in a Glue table's
parameters and commits with ``UpdateTable(..., VersionId=<the version it read>)``: Glue refuses
the update if the table changed since (``ConcurrentModificationException``, which pyiceberg
turns into ``CommitFailedException``), so the flusher's pinned commit is as atomic on Glue as
the SQL catalog's conditional ``UPDATE``.
"""

from __future__ import annotations

from typing import Final

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

__all__ = ["access_denied", "unavailable"]

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
