"""The Iceberg catalog of the lake, with the table data and metadata files in an S3 warehouse
(``s3://bucket/prefix``). Two kinds (``CatalogConfig.kind``):

- ``sql``: a pyiceberg ``SqlCatalog`` whose tables of record live in PostgreSQL (the dev stack,
  docker compose, a cluster without Glue);
- ``glue``: the AWS Glue Data Catalog of the account and region (EKS), one Glue database per
  namespace; ``read_models.lake`` holds what is particular to it (the client's properties,
  which of its errors mean an outage).

``CatalogConfig`` (``read_models.lake``, shared with the query API, re-exported here) holds
what the service will need: the catalog database's SQLAlchemy URL (SQL
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

import time
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from consumer_runtime import RetryableError
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError
from read_models.lake import CatalogConfig, glue_access_denied, glue_unavailable
from sqlalchemy import exc as sa_exc

from analytics_flusher.errors import AnalyticsFlusherError

__all__ = ["CatalogConfig", "ensure_namespace", "open_catalog", "transient"]

_log = structlog.get_logger("analytics_flusher")

# How often a catalog start that lost a creation race to another process is tried again.
_CREATE_ATTEMPTS = 3


@contextmanager
def transient(what: str) -> Iterator[None]:
    """The catalog unreachable (the SQL catalog's database: a dropped or refused connection,
    no pooled connection; the Glue API: no connection, a timeout, throttling or a server-side
    failure, see ``read_models.lake.glue_unavailable``) or the warehouse unreachable (an S3
    request that failed: pyarrow raises ``OSError``) is the runtime's ``RetryableError``;
    everything else propagates (a bug, a refusal such as missing permissions, or a conflict
    the caller handles)."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
        raise RetryableError(f"{what}: catalog database unavailable ({exc})") from exc
    except (BotoCoreError, ClientError) as exc:
        # Before OSError: botocore's timeouts are also OSErrors (through requests' classes).
        if not glue_unavailable(exc):
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
            if not glue_access_denied(exc):
                raise
            raise AnalyticsFlusherError(
                f"the Glue database {namespace!r} does not exist and this role may not create "
                "it: create it with Terraform (terraform/modules/glue-catalog, `terraform "
                "apply`) or set LAKE_NAMESPACE to the database it created"
            ) from exc
    _log.info("created Iceberg namespace", namespace=namespace)
    return True
