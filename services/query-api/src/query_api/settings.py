"""Settings of the query API, read once from the environment by ``__main__`` (or handed to
``app.create_app`` by a test). Names are the field names upper-cased; the backends' names are
the services' own, so one Secret or ConfigMap can feed both:

| variable | default | meaning |
|---|---|---|
| ``API_PORT`` | ``8080`` | the port uvicorn listens on |
| ``API_HOST`` | ``0.0.0.0`` | the address it binds |
| ``API_KEYS_FILE`` | ``/etc/query-api/keys`` | the key file (a mounted Secret; see ``_keys``) |
| ``API_KEYS`` | unset | the same entries, for local runs (added to the file's) |
| ``DATABASE_URL`` | unset | the statistics read model (stats-aggregator's database) |
| ``EVENT_STORE_URL`` | unset | the event store (event-store-writer's ``DATABASE_URL``) |
| ``DYNAMODB_TABLE`` | ``product-search-index`` | the search index (search-indexer's) |
| ``INVENTORY_TABLE`` | unset | the ``inventory-realtime`` projection (stats-aggregator's) |
| ``AWS_ENDPOINT_URL`` / ``AWS_REGION`` | unset | the AWS emulator / region (DynamoDB, S3, Glue) |
| ``LAKE_CATALOG`` | ``sql`` | the lake's catalog: ``sql`` or ``glue`` (analytics-flusher's) |
| ``LAKE_CATALOG_URI`` | unset | the SQL catalog's database (unset with ``sql``: no lake) |
| ``LAKE_WAREHOUSE`` | ``s3://$S3_BUCKET/warehouse`` | the warehouse |
| ``LAKE_NAMESPACE`` | ``analytics`` | the namespace of the report tables |
| ``S3_BUCKET`` | unset | the lake's bucket (for the default warehouse) |
| ``BACKEND_TIMEOUT_S`` | ``2.0`` | every backend call's budget; past it the answer is a 504 |
| ``BACKEND_THREADS`` | ``32`` | threads running the (blocking) backend calls |
| ``DB_POOL_SIZE`` / ``DB_MAX_OVERFLOW`` | ``8`` / ``8`` | each PostgreSQL backend's pool |
| ``LOG_LEVEL`` / ``LOG_FORMAT`` | ``INFO`` / ``json`` | logging |

A backend left unset is not served: its endpoints answer 503 and ``/readyz`` lists it as not
configured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from read_models.lake import CatalogConfig

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything the API reads from the environment."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    api_port: int = Field(default=8080, ge=0, le=65535)
    api_host: str = "0.0.0.0"  # noqa: S104 - a container listens on every interface
    api_keys_file: Path = Path("/etc/query-api/keys")
    api_keys: SecretStr | None = None

    database_url: SecretStr | None = None
    event_store_url: SecretStr | None = None
    dynamodb_table: str | None = Field(default="product-search-index", max_length=255)
    inventory_table: str | None = None
    aws_endpoint_url: str | None = None
    aws_region: str | None = None

    lake_catalog: Literal["sql", "glue"] = "sql"
    lake_catalog_uri: SecretStr | None = None
    lake_warehouse: str | None = None
    lake_namespace: str = Field(default="analytics", min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    s3_bucket: str | None = None

    # A statistics read takes a millisecond; 2 s means the backend is down or overloaded, and a
    # client (the dashboard polling every few seconds) is better served by a 504 than a hang.
    backend_timeout_s: float = Field(default=2.0, gt=0, le=60)
    backend_threads: int = Field(default=32, ge=1, le=256)
    db_pool_size: int = Field(default=8, ge=1, le=100)
    db_max_overflow: int = Field(default=8, ge=0, le=100)
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    def catalog_config(self) -> CatalogConfig | None:
        """Where the lake's report tables are (None: no lake configured)."""
        if self.lake_catalog == "sql" and self.lake_catalog_uri is None:
            return None
        warehouse = self.lake_warehouse or (
            f"s3://{self.s3_bucket}/warehouse" if self.s3_bucket else None
        )
        if warehouse is None:
            return None
        uri = self.lake_catalog_uri.get_secret_value() if self.lake_catalog_uri else ""
        env = {**os.environ}
        if self.aws_endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.aws_endpoint_url
        if self.aws_region:
            env["AWS_REGION"] = self.aws_region
        return CatalogConfig.from_env(
            uri, warehouse, namespace=self.lake_namespace, kind=self.lake_catalog, env=env
        )
