"""The catalog's configuration per kind (``CatalogConfig.properties``) and which failures are
the runtime's ``RetryableError`` (``transient``): pure logic, no catalog."""

from __future__ import annotations

import pytest
from analytics_flusher.store._iceberg import CatalogConfig
from analytics_flusher.store._iceberg._catalog import transient
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from consumer_runtime import RetryableError
from sqlalchemy import exc as sa_exc

EMULATOR = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "key",
    "AWS_SECRET_ACCESS_KEY": "secret",
}
WAREHOUSE = "s3://lake/warehouse"


def test_a_sql_catalog_gets_its_database_and_the_s3_file_io() -> None:
    config = CatalogConfig.from_env("postgresql+psycopg2://u:p@h/db", WAREHOUSE, env=EMULATOR)
    assert config.properties() == {
        "uri": "postgresql+psycopg2://u:p@h/db",
        "warehouse": WAREHOUSE,
        "s3.endpoint": "http://127.0.0.1:5000",
        "s3.region": "eu-west-1",
        "s3.access-key-id": "key",
        "s3.secret-access-key": "secret",
        "s3.path-style-access": "true",
    }


def test_a_glue_catalog_on_the_emulator_gets_its_endpoint_region_and_keys() -> None:
    config = CatalogConfig.from_env("", WAREHOUSE, kind="glue", env=EMULATOR)
    props = config.properties()
    assert "uri" not in props
    assert {k: v for k, v in props.items() if k.startswith("glue.")} == {
        "glue.region": "eu-west-1",
        "glue.endpoint": "http://127.0.0.1:5000",
        "glue.access-key-id": "key",
        "glue.secret-access-key": "secret",
        "glue.max-retries": 3,
    }
    assert props["s3.endpoint"] == "http://127.0.0.1:5000"
    assert props["s3.path-style-access"] == "true"


def test_a_glue_catalog_on_aws_leaves_endpoints_and_credentials_to_the_sdk() -> None:
    """On EKS: no endpoint, no keys; the pod's role through the SDK's default chain."""
    props = CatalogConfig.from_env(
        "", WAREHOUSE, kind="glue", env={"AWS_REGION": "eu-west-1"}
    ).properties()
    assert props == {
        "warehouse": WAREHOUSE,
        "s3.region": "eu-west-1",
        "glue.region": "eu-west-1",
        "glue.max-retries": 3,
    }


def test_a_glue_catalog_needs_a_region_and_a_sql_catalog_its_uri() -> None:
    with pytest.raises(ValueError, match="AWS_REGION"):
        CatalogConfig.from_env("", WAREHOUSE, kind="glue", env={})
    with pytest.raises(ValueError, match="database URI"):
        CatalogConfig.from_env("", WAREHOUSE, kind="sql", env={})


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "UpdateTable",
    )


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://glue.eu-west-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://glue.eu-west-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://glue.eu-west-1.amazonaws.com"),
        _client_error("ThrottlingException"),
        _client_error("Throttling"),
        _client_error("ServiceUnavailable", 503),
        _client_error("InternalFailure", 500),
        _client_error("InternalServiceException", 500),
        _client_error("SomethingNew", 502),
    ],
    ids=lambda e: (
        str(e.response["Error"]["Code"]) if isinstance(e, ClientError) else type(e).__name__
    ),
)
def test_glue_unavailable_is_retryable(error: Exception) -> None:
    with pytest.raises(RetryableError, match="AWS Glue unavailable") as caught, transient("x"):
        raise error
    assert caught.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        _client_error("AccessDeniedException"),
        _client_error("EntityNotFoundException"),
        _client_error("InvalidInputException"),
        NoCredentialsError(),
    ],
)
def test_glue_answers_and_missing_credentials_are_not_retried(error: Exception) -> None:
    with pytest.raises(type(error)), transient("committing"):
        raise error


def test_the_sql_catalog_and_the_warehouse_outages_stay_retryable() -> None:
    with pytest.raises(RetryableError, match="catalog database unavailable"), transient("x"):
        raise sa_exc.OperationalError("SELECT 1", {}, Exception("refused"))
    with pytest.raises(RetryableError, match="warehouse unavailable"), transient("x"):
        raise OSError("S3 request failed")


@pytest.mark.unit
def test_the_read_library_knows_every_report_table() -> None:
    """The query API lists and reads the report tables by ``read_models.lake.REPORT_TABLES``."""
    from analytics_flusher.store._iceberg._reports import REPORT_TABLES
    from read_models.lake import REPORT_TABLES as READ

    assert READ == REPORT_TABLES
