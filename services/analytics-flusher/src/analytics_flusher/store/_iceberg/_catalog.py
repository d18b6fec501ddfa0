"""The Iceberg catalog of the lake, with the table data and metadata files in an S3 warehouse
(``s3://bucket/prefix``). Two kinds (``CatalogConfig.kind``):

- ``sql``: a pyiceberg ``SqlCatalog`` whose tables of record live in PostgreSQL (the dev stack,
  docker compose, a cluster without Glue);
- ``glue``: the AWS Glue Data Catalog of the account and region (EKS), one Glue database per
  namespace; ``_glue`` holds what is particular to it.

``CatalogConfig`` holds what the service will need: the catalog database's SQLAlchemy URL (SQL
only), the warehouse, the namespace, and the AWS endpoint, region and credentials, read from
the environment as ``sink_kit.aws`` reads them for boto3 (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``). Without keys in the
environment, the file IO (pyarrow's S3 filesystem) and the Glue client use the AWS SDK's
default chain (on EKS: the pod's role).

``open_catalog`` is safe to run from several processes at once on a fresh catalog: pyiceberg
creates the SQL catalog's two tables when they are missing (a concurrent creator's duplicate is
taken as done), and the namespace is created only when missing (the same).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from consumer_runtime import RetryableError
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError
from sqlalchemy import exc as sa_exc

from analytics_flusher.errors import AnalyticsFlusherError
from analytics_flusher.store._iceberg import _glue

__all__ = ["CatalogConfig", "ensure_namespace", "open_catalog", "transient"]

_log = structlog.get_logger("analytics_flusher")

# How often a catalog start that lost a creation race to another process is tried again.
_CREATE_ATTEMPTS = 3


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
            props.update(_glue.client_properties(self))
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


@contextmanager
def transient(what: str) -> Iterator[None]:
    """The catalog unreachable (the SQL catalog's database: a dropped or refused connection,
    no pooled connection; the Glue API: no connection, a timeout, throttling or a server-side
    failure, see ``_glue.unavailable``) or the warehouse unreachable (an S3 request that
    failed: pyarrow raises ``OSError``) is the runtime's ``RetryableError``; everything else
    propagates (a bug, a refusal such as missing permissions, or a conflict the caller
    handles)."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
        raise RetryableError(f"{what}: catalog database unavailable ({exc})") from exc
    except (BotoCoreError, ClientError) as exc:
        # Before OSError: botocore's timeouts are also OSErrors (through requests' classes).
        if not _glue.unavailable(exc):
            raise
        raise RetryableError(f"{what}: AWS Glue unavailable ({exc})") from exc
    except OSError as exc:
        raise RetryableError(f"{what}: warehouse unavailable ({exc})") from exc


def open_catalog(config: CatalogConfig) -> Catalog:
    """The catalog (for SQL, its tables in the database created when missing) and the
    namespace, created when missing.

    An outage of the catalog is the runtime's ``RetryableError`` (``transient``).
    """
    if config.kind == "glue":
        with transient("opening the Glue catalog"):
            catalog: Catalog = GlueCatalog(config.name, **config.properties())
        ensure_namespace(catalog, config.namespace)
        return catalog
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            with transient("opening the Iceberg catalog"):
                catalog = SqlCatalog(config.name, **config.properties())
            break
        except (sa_exc.IntegrityError, sa_exc.ProgrammingError):
            # Another process created the catalog tables between pyiceberg's check and its
            # CREATE TABLE (a duplicate type or relation): they exist now.
            if attempt == _CREATE_ATTEMPTS:
                raise
            _log.info("catalog tables created concurrently; opening again", attempt=attempt)
            time.sleep(0.1 * attempt)
    ensure_namespace(catalog, config.namespace)
    return catalog


def ensure_namespace(catalog: Catalog, namespace: str) -> bool:
    """Create ``namespace`` if missing; True if this call created it. Two processes creating
    it at once both succeed (pyiceberg checks, then creates: the loser's creation is a
    duplicate key or Glue's ``AlreadyExistsException``, which is taken as done once the
    namespace is seen). A Glue role that may not create the database (on AWS, Terraform
    creates it) fails with ``AnalyticsFlusherError`` saying so."""
    with transient(f"creating namespace {namespace}"):
        if catalog.namespace_exists(namespace):
            return False
        try:
            catalog.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            return False
        except sa_exc.IntegrityError:
            if not catalog.namespace_exists(namespace):
                raise
            return False
        except ClientError as exc:
            if not _glue.access_denied(exc):
                raise
            raise AnalyticsFlusherError(
                f"the Glue database {namespace!r} does not exist and this role may not create "
                "it: create it with Terraform (terraform/modules/glue-catalog, `terraform "
                "apply`) or set LAKE_NAMESPACE to the database it created"
            ) from exc
    _log.info("created Iceberg namespace", namespace=namespace)
    return True
