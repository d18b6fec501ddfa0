"""docker-compose.yml without a Docker engine: valid against the Compose Specification schema
(vendored in deploy/schemas, see deploy/README.md), settings names, start-up ordering, and the
files it mounts."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from devstack import SHOP_DDL

from .conftest import ROOT, SERVICES

# The settings each service reads (libs/consumer-runtime and the services' settings classes).
# Kept here in one place until the settings classes exist; then build these sets from
# `<Settings>.model_fields` (pydantic-settings) instead, so a renamed setting fails this test.
COMMON_SETTINGS = frozenset(
    {
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_GROUP_ID",
        "KAFKA_TOPICS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "BATCH_SIZE",
        "BATCH_MAX_WAIT_MS",
        "DLQ_TOPIC",
        "HEALTH_PORT",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "SHUTDOWN_GRACE_S",
    }
)
_AWS = frozenset({"AWS_REGION", "AWS_ENDPOINT_URL"})
ALLOWED_SETTINGS: dict[str, frozenset[str]] = {
    "event-store-writer": COMMON_SETTINGS | {"DATABASE_URL", "DB_POOL_SIZE"},
    "stats-aggregator": COMMON_SETTINGS
    | _AWS
    | {"DATABASE_URL", "DB_POOL_SIZE", "LOW_STOCK_THRESHOLD", "INVENTORY_TABLE"},
    "search-indexer": COMMON_SETTINGS | _AWS | {"DYNAMODB_TABLE"},
    "analytics-flusher": COMMON_SETTINGS
    | _AWS
    | {"S3_BUCKET", "WINDOW_SECONDS", "WINDOW_GRACE_SECONDS"},
}
# Read by boto3 itself, not by the settings classes: LocalStack's dummy credentials.
AWS_SDK_ENV = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "deploy/schemas/compose-spec.json").read_text())
    assert "2019-09" in schema["$schema"]
    jsonschema.validate(compose, schema, cls=jsonschema.Draft201909Validator)


def test_schema_check_catches_mistakes(compose: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "deploy/schemas/compose-spec.json").read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["kafka"]["depends_on"] = {"x": {"condition": "service_ready"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft201909Validator)


def test_the_whole_topology_is_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["connect"]["image"].startswith("quay.io/debezium/connect:")
    assert "wal_level=logical" in services["source-postgres"]["command"]
    assert services["localstack"]["environment"]["SERVICES"] == "s3,dynamodb"
    assert services["simulator"]["build"]["dockerfile"] == "docker/simulator/Dockerfile"
    assert set(SERVICES) <= set(services)
    for name, svc in services.items():
        image = svc.get("image", "")
        assert image and not image.endswith(":latest") and ":" in image, name


def test_consumers_use_only_documented_settings(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        svc = compose["services"][name]
        env = set(svc["environment"])
        unknown = env - ALLOWED_SETTINGS[name] - AWS_SDK_ENV
        assert not unknown, f"{name}: unknown settings {sorted(unknown)}"
        assert svc["environment"]["KAFKA_GROUP_ID"] == f"{name}-group"
        assert svc["build"]["dockerfile"] == f"services/{name}/Dockerfile"
        assert svc["healthcheck"]["test"][-1].count("/readyz") == 1
        assert svc["read_only"] is True


def test_consumers_start_after_their_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVICES:
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["register-connector"]["condition"] == "service_completed_successfully"
        if "DATABASE_URL" in services[name]["environment"]:
            assert deps["sink-postgres"]["condition"] == "service_healthy"
        if "AWS_ENDPOINT_URL" in services[name]["environment"]:
            assert deps["localstack"]["condition"] == "service_healthy"
    # every service a condition waits on for health declares a health check
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"


def test_mounted_init_files_match_the_shared_definitions(compose: dict[str, Any]) -> None:
    mount = "./libs/devstack/src/devstack/shop_schema.sql:/docker-entrypoint-initdb.d/"
    source = compose["services"]["source-postgres"]
    assert any(str(v).startswith(mount) for v in source["volumes"])
    assert SHOP_DDL.strip() in (ROOT / mount.split(":", maxsplit=1)[0]).read_text()
    connector = json.loads((ROOT / "docker/connect/shop-postgres.json").read_text())
    platform = yaml.safe_load((ROOT / "k8s/platform/connector.yaml").read_text())["spec"]
    for key in (
        "topic.prefix",
        "plugin.name",
        "table.include.list",
        "database.dbname",
        "key.converter.schemas.enable",
        "value.converter.schemas.enable",
    ):
        assert connector[key] == platform["config"][key], key
    for svc in compose["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
