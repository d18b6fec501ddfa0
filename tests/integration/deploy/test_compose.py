"""docker-compose.yml without a Docker engine: valid against the Compose Specification schema
(vendored in deploy/schemas, see deploy/README.md), settings names, start-up ordering, and the
files it mounts."""

from __future__ import annotations

import importlib
import json
from typing import Any

import jsonschema
import pytest
import yaml
from devstack import SHOP_DDL

from .conftest import ROOT, SERVICES

# The settings each service reads, from its settings class (pydantic-settings: the environment
# name is the field name upper-cased), so a renamed or misspelt setting fails here.
SETTINGS_CLASSES = {
    "event-store-writer": "event_store_writer.settings:Settings",
    "stats-aggregator": "stats_aggregator.settings:Settings",
    "search-indexer": "search_indexer.settings:Settings",
    "analytics-flusher": "analytics_flusher.settings:FlusherSettings",
}


def _allowed(service: str) -> frozenset[str]:
    module, _, name = SETTINGS_CLASSES[service].partition(":")
    cls = getattr(importlib.import_module(module), name)
    return frozenset(field.upper() for field in cls.model_fields)


ALLOWED_SETTINGS: dict[str, frozenset[str]] = {s: _allowed(s) for s in SETTINGS_CLASSES}
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
        assert svc["build"]["dockerfile"] == "docker/service/Dockerfile"
        package = name.replace("-", "_")
        assert svc["build"]["args"] == {"SERVICE": name, "PACKAGE": package}
        assert svc["healthcheck"]["test"][-1].count("/readyz") == 1
        assert svc["read_only"] is True


def test_consumers_start_after_their_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVICES:
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["register-connector"]["condition"] == "service_completed_successfully"
        env = services[name]["environment"]
        if "DATABASE_URL" in env or "LAKE_CATALOG_URI" in env:
            assert deps["sink-postgres"]["condition"] == "service_healthy"
        if "AWS_ENDPOINT_URL" in services[name]["environment"]:
            assert deps["localstack"]["condition"] == "service_healthy"
    # every service a condition waits on for health declares a health check
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"


def test_the_flusher_s_iceberg_catalog_is_in_the_sink_postgresql(compose: dict[str, Any]) -> None:
    """A SQL catalog in a database the sink PostgreSQL's init script creates, the warehouse in
    the bucket LocalStack's ready hook creates, through LocalStack's endpoint."""
    from analytics_flusher.settings import FlusherSettings

    env = compose["services"]["analytics-flusher"]["environment"]
    settings = FlusherSettings.model_validate({k.lower(): v for k, v in env.items()})
    config = settings.catalog_config()
    assert config is not None and config.kind == "sql"
    url = env["LAKE_CATALOG_URI"]
    assert url.startswith("postgresql+psycopg2://") and "@sink-postgres:5432/" in url
    database = url.rsplit("/", 1)[1]
    init = "\n".join(p.read_text() for p in (ROOT / "docker/sink-postgres").glob("*.sql"))
    assert f"CREATE DATABASE {database};" in init
    bucket = env["S3_BUCKET"]
    assert env["LAKE_WAREHOUSE"] == f"s3://{bucket}/warehouse"
    assert f"s3://{bucket}" in (ROOT / "docker/localstack/init-aws.sh").read_text()
    assert env["AWS_ENDPOINT_URL"] == "http://localstack:4566"


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


def test_kubernetes_configmaps_name_only_real_settings() -> None:
    for service in SERVICES:
        path = ROOT / "k8s/base" / service / "configmap.yaml"
        data = yaml.safe_load(path.read_text())["data"]
        unknown = set(data) - ALLOWED_SETTINGS[service] - AWS_SDK_ENV
        assert not unknown, f"{path.relative_to(ROOT)} sets unknown settings {sorted(unknown)}"


def _mounts(svc: dict[str, Any]) -> dict[str, str]:
    """The service's bind mounts: container path -> repository path."""
    out = {}
    for volume in svc.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            out[target] = source[2:]
    return out


def test_prometheus_scrapes_every_consumer_s_metrics_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prometheus = services["prometheus"]
    mounts = _mounts(prometheus)
    config = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    targets = {
        t
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for sc in job["static_configs"]
        for t in sc["targets"]
    }
    for name in SERVICES:
        port = services[name]["environment"]["HEALTH_PORT"]
        assert f"{name}:{port}" in targets, name
    # The alert rules it evaluates are the cluster's, through the generated plain file.
    rules = [target for target in mounts if target.startswith("/etc/prometheus/rules/")]
    assert [mounts[r] for r in rules] == ["k8s/monitoring/prometheus-rules.yaml"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    assert all(r.endswith(".yaml") for r in rules)


def test_grafana_provisions_every_dashboard_and_the_prometheus_datasource(
    compose: dict[str, Any],
) -> None:
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    datasources = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    prometheus_port = compose["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    providers = yaml.safe_load((provisioning / "dashboards/cdc.yaml").read_text())["providers"]
    paths = {p["options"]["path"] for p in providers}
    # Each provider reads a mounted folder, and the folders hold every dashboard of k8s/.
    mounted = {target: ROOT / mounts[target] for target in paths}
    shipped = {p.name for folder in mounted.values() for p in folder.glob("*.json")}
    assert shipped == {p.name for p in (ROOT / "k8s/monitoring/dashboards").glob("*.json")}
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert any(home.startswith(path + "/") for path in paths)
    assert (mounted[home.rsplit("/", 1)[0]] / home.rsplit("/", 1)[1]).exists()
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_kafka_ui_points_at_the_broker_and_the_connect_cluster(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = services["kafka-ui"]["environment"]
    assert env["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:9092"
    assert (
        "PLAINTEXT://kafka:9092" in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert env["KAFKA_CLUSTERS_0_KAFKACONNECT_0_ADDRESS"] == "http://connect:8083"
    assert services["connect"]["ports"] == ["8083:8083"]
    assert services["kafka-ui"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_each_service_waits_for_a_batch_as_long_as_in_kubernetes(compose: dict[str, Any]) -> None:
    """``BATCH_MAX_WAIT_MS`` adds up to its value to every record's latency at usual traffic:
    running the stack locally must show the freshness a deployment has."""
    for service in SERVICES:
        configmap = yaml.safe_load((ROOT / f"k8s/base/{service}/configmap.yaml").read_text())
        env = compose["services"][service]["environment"]
        wait = configmap["data"]["BATCH_MAX_WAIT_MS"]
        assert env.get("BATCH_MAX_WAIT_MS") == wait, (service, env.get("BATCH_MAX_WAIT_MS"), wait)
