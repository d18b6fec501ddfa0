"""Where the lake's Iceberg tables are (``CatalogConfig``): the catalog (a pyiceberg
``SqlCatalog`` in PostgreSQL, or the AWS Glue Data Catalog), the S3 warehouse, the namespace,
and the AWS endpoint, region and credentials, read from the environment as ``sink_kit.aws``
reads them for boto3 (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``). Without keys in the environment, the file
IO (pyarrow's S3 filesystem) and the Glue client use the AWS SDK's default chain (on EKS: the
pod's role).

Pure: the pyiceberg catalog properties are computed here, the catalog is opened by the
analytics flusher (``open_catalog``, which also creates what is missing) and by ``_reports``
(read only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["CatalogConfig"]

# The Glue client's retries of one request (botocore's standard mode: throttling, 5xx and
# connection errors, with exponential backoff capped at 20 s). pyiceberg's default of 10 could
# hold a batch for minutes; 3 ride out a blip within seconds, then the runtime's own backoff
# (RetryableError, see ``unavailable``) takes over with the batch paused, not hung.
_GLUE_MAX_RETRIES: Final = 3


@dataclass(frozen=True)
class CatalogConfig:
    """Where the lake's Iceberg tables are: ``uri`` is the SQL catalog's database
    (``postgresql+psycopg2://...``; unused by Glue), ``warehouse`` the S3 location new tables
    are created under (``s3://<bucket>/<prefix>``), ``namespace`` the namespace of the
    flusher's tables (with Glue, the Glue database) and ``name`` the catalog's name (the
    ``catalog_name`` of the SQL catalog's rows)."""

    uri: str = field(repr=False)  # it may carry the database password
    warehouse: str
    namespace: str = "analytics"
    name: str = "lake"
    #: ``sql`` (a pyiceberg ``SqlCatalog`` at ``uri``) or ``glue`` (the AWS Glue Data Catalog).
    kind: str = "sql"
    #: An emulator's endpoint (moto, LocalStack) for S3 and Glue; None on AWS.
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.warehouse.startswith("s3://") or len(self.warehouse) <= len("s3://"):
            raise ValueError(f"warehouse {self.warehouse!r} is not an s3://bucket/prefix location")
        if not self.namespace or "." in self.namespace:
            raise ValueError(f"namespace {self.namespace!r}: one level, not empty")
        if self.kind not in ("sql", "glue"):
            raise ValueError(f"catalog kind {self.kind!r}: sql or glue")
        if self.kind == "sql" and not self.uri:
            raise ValueError("a SQL catalog needs its database URI")
        if self.kind == "glue" and not self.region:
            # Glue is regional and boto3 does not read AWS_REGION for the client's region.
            raise ValueError("a Glue catalog needs the region: set AWS_REGION")

    @classmethod
    def from_env(
        cls,
        uri: str,
        warehouse: str,
        *,
        namespace: str = "analytics",
        kind: str = "sql",
        env: Mapping[str, str] | None = None,
    ) -> CatalogConfig:
        """The AWS settings from ``env`` (this process's environment by default)."""
        env = os.environ if env is None else env
        return cls(
            uri=uri,
            warehouse=warehouse,
            namespace=namespace,
            kind=kind,
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
        )

    def properties(self) -> dict[str, Any]:
        """The pyiceberg catalog properties of this kind (``SqlCatalog(name, **properties)``,
        ``GlueCatalog(name, **properties)``): the S3 file IO's, plus the SQL catalog's
        database or the Glue client's region, endpoint, credentials and retries (strings, but
        ``glue.max-retries``: an int, which pyiceberg hands to botocore as it is)."""
        props: dict[str, Any] = {"warehouse": self.warehouse, **self._s3_properties()}
        if self.kind == "glue":
            props.update(_glue_properties(self))
        else:
            props["uri"] = self.uri
        return props

    def _s3_properties(self) -> dict[str, str]:
        optional = {
            "s3.endpoint": self.endpoint_url,
            "s3.region": self.region,
            "s3.access-key-id": self.access_key_id,
            "s3.secret-access-key": self.secret_access_key,
            "s3.session-token": self.session_token,
        }
        props = {key: value for key, value in optional.items() if value}
        if self.endpoint_url:
            # An emulator (moto, LocalStack) serves buckets by path, not by host name.
            props["s3.path-style-access"] = "true"
        return props


def _glue_properties(config: CatalogConfig) -> dict[str, str | int]:
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
