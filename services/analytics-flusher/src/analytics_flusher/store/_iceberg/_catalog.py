"""The Iceberg catalog of the lake: a pyiceberg ``SqlCatalog`` whose tables of record live in
PostgreSQL, with the table data and metadata files in an S3 warehouse (``s3://bucket/prefix``).

``CatalogConfig`` holds what the service will need: the catalog database's SQLAlchemy URL, the
warehouse, the namespace, and the S3 endpoint, region and credentials, read from the
environment as ``sink_kit.aws`` reads them for boto3 (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``). Without keys in the
environment, the file IO (pyarrow's S3 filesystem) uses the AWS SDK's default chain.

``open_catalog`` is safe to run from several processes at once on a fresh database: pyiceberg
creates its two catalog tables when they are missing (a concurrent creator's duplicate is taken
as done), and the namespace is created only when missing (the same).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import structlog
from consumer_runtime import RetryableError
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError
from sqlalchemy import exc as sa_exc

__all__ = ["CatalogConfig", "ensure_namespace", "open_catalog", "transient"]

_log = structlog.get_logger("analytics_flusher")

# How often a catalog start that lost a creation race to another process is tried again.
_CREATE_ATTEMPTS = 3


@dataclass(frozen=True)
class CatalogConfig:
    """Where the lake's Iceberg tables are: ``uri`` is the catalog database
    (``postgresql+psycopg2://...``), ``warehouse`` the S3 location new tables are created under
    (``s3://<bucket>/<prefix>``), ``namespace`` the namespace of the flusher's tables and
    ``name`` the catalog's name (the ``catalog_name`` of its rows)."""

    uri: str = field(repr=False)  # it may carry the database password
    warehouse: str
    namespace: str = "analytics"
    name: str = "lake"
    #: ``sql`` (a pyiceberg ``SqlCatalog`` at ``uri``) or ``glue`` (the AWS Glue Data Catalog).
    kind: str = "sql"
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
        """The S3 settings from ``env`` (this process's environment by default)."""
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

    def properties(self) -> dict[str, str]:
        """The pyiceberg catalog properties (``SqlCatalog(name, **properties)``)."""
        props = {"uri": self.uri, "warehouse": self.warehouse}
        optional = {
            "s3.endpoint": self.endpoint_url,
            "s3.region": self.region,
            "s3.access-key-id": self.access_key_id,
            "s3.secret-access-key": self.secret_access_key,
            "s3.session-token": self.session_token,
        }
        props.update({key: value for key, value in optional.items() if value})
        if self.endpoint_url:
            # An emulator (moto, LocalStack) serves buckets by path, not by host name.
            props["s3.path-style-access"] = "true"
        return props


@contextmanager
def transient(what: str) -> Iterator[None]:
    """The catalog database or the warehouse unreachable (a dropped or refused connection, no
    pooled connection, an S3 request that failed: pyarrow raises ``OSError``) is the runtime's
    ``RetryableError``; everything else propagates (a bug, or a conflict the caller handles)."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
        raise RetryableError(f"{what}: catalog database unavailable ({exc})") from exc
    except OSError as exc:
        raise RetryableError(f"{what}: warehouse unavailable ({exc})") from exc


def open_catalog(config: CatalogConfig) -> SqlCatalog:
    """The catalog, its tables in the database created when missing, and the namespace.

    An outage of the database is the runtime's ``RetryableError`` (``transient``).
    """
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


def ensure_namespace(catalog: SqlCatalog, namespace: str) -> bool:
    """Create ``namespace`` if missing; True if this call created it. Two processes creating
    it at once both succeed (pyiceberg checks, then inserts: the loser's insert is a duplicate
    key, which is taken as done once the namespace is seen)."""
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
    _log.info("created Iceberg namespace", namespace=namespace)
    return True
