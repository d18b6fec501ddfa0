"""The read API's deployment (services/query-api): its manifests in every overlay, its network
policy, its keys Secret, its compose service and its image.

The checks of the deployment run whatever the tree holds. The ones that read the service's own
code (its settings names, the workspace libraries its image needs) skip until
services/query-api is in the tree, then apply like the consumers' do."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import pytest
import yaml
from cdc_operator import render_kustomization

from .conftest import API, ROOT, needs_api

K8S = ROOT / "k8s"
OVERLAYS = ("local", "staging", "prod")
VPC = {"local": "10.0.0.0/16", "staging": "10.40.0.0/16", "prod": "10.50.0.0/16"}
HOSTS = {
    "local": "api.cdc-platform.localhost",
    "staging": "api.staging.cdc-platform.example.com",
    "prod": "api.cdc-platform.example.com",
}
KEYS_DIR = "/etc/query-api"
# The Secrets of the stores it reads: the consumers' own (k8s/base/db/credentials.yaml).
DATABASE_ENV = {
    "DATABASE_URL": "stats-aggregator-db",
    "EVENT_STORE_URL": "event-store-writer-db",
}
POD_IDENTITY_AGENT = "169.254.170.23/32"
AWS_SDK_ENV = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})


def _objects(overlay: str) -> dict[str, dict[str, Any]]:
    """The rendered overlay's objects named query-api, by kind."""
    return {
        m["kind"]: m
        for m in render_kustomization(K8S / "overlays" / overlay)
        if m["metadata"]["name"] == API
    }


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions In/NotIn/Exists) against pod labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_serves_v1_through_the_ingress_and_scales_on_cpu(overlay: str) -> None:
    objects = _objects(overlay)
    assert set(objects) >= {
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ServiceMonitor",
    }
    deployment = objects["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    # Serving traffic: a new pod is ready before an old one goes; the autoscaler owns replicas.
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert "replicas" not in deployment["spec"]
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": API}
    [metric] = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
    if overlay != "local":
        assert hpa["minReplicas"] >= 2  # one replica may be drained (PDB) and one still serves
    assert objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    service = objects["Service"]["spec"]
    assert _selects({"matchLabels": service["selector"]}, pod_labels)
    assert [(p["name"], p["port"]) for p in service["ports"]] == [("http", 8080)]
    monitor = objects["ServiceMonitor"]["spec"]
    assert _selects(monitor["selector"], objects["Service"]["metadata"]["labels"])
    assert [(e["port"], e["path"]) for e in monitor["endpoints"]] == [("http", "/metrics")]
    # Only /v1 is public: metrics and probes stay inside the cluster.
    ingress = objects["Ingress"]["spec"]
    assert ingress["ingressClassName"] == "nginx"
    [rule] = ingress["rules"]
    assert rule["host"] == HOSTS[overlay]
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/v1", "Prefix")
    assert path["backend"]["service"] == {"name": API, "port": {"name": "http"}}
    if overlay == "local":
        assert "tls" not in ingress
    else:
        assert ingress["tls"] == [{"hosts": [HOSTS[overlay]], "secretName": "query-api-tls"}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_reads_its_keys_and_the_consumers_stores(overlay: str) -> None:
    objects = _objects(overlay)
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == API
    assert objects["ServiceAccount"]["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "api-keys"]
    assert mount == {"name": "api-keys", "mountPath": KEYS_DIR, "readOnly": True}
    [volume] = [v for v in pod["volumes"] if v["name"] == "api-keys"]
    assert volume["secret"]["secretName"] == "query-api-keys"
    assert volume["secret"]["items"] == [{"key": "keys", "path": "keys"}]
    data = objects["ConfigMap"]["data"]
    assert data["API_KEYS_FILE"] == f"{KEYS_DIR}/keys"
    assert data["API_PORT"] == "8080"
    assert {p["containerPort"] for p in container["ports"]} == {8080}
    # The consumers' tables and catalog, by the names the consumers use.
    consumers = {
        m["metadata"]["name"]: m["data"]
        for m in render_kustomization(K8S / "overlays" / overlay)
        if m["kind"] == "ConfigMap"
    }
    assert data["DYNAMODB_TABLE"] == consumers["search-indexer"]["DYNAMODB_TABLE"]
    assert data["INVENTORY_TABLE"] == consumers["stats-aggregator"]["INVENTORY_TABLE"]
    for key in ("LAKE_CATALOG", "LAKE_NAMESPACE", "LAKE_WAREHOUSE", "AWS_REGION"):
        assert data[key] == consumers["analytics-flusher"][key], key
    env = {e["name"]: e for e in container["env"]}
    for name, secret in DATABASE_ENV.items():
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "url"}, name
    assert not [k for k in (*data, *env) if k.startswith("KAFKA_")]  # no Kafka client
    if overlay == "local":
        ref = env["LAKE_CATALOG_URI"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "analytics-flusher-lake", "key": "url", "optional": True}
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < pause < pod["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_takes_traffic_only_from_the_ingress_and_prometheus(overlay: str) -> None:
    manifests = render_kustomization(K8S / "overlays" / overlay)
    policies = {m["metadata"]["name"]: m["spec"] for m in manifests if m["kind"] == "NetworkPolicy"}
    [deployment] = [m for m in manifests if m["kind"] == "Deployment" and
                    m["metadata"]["name"] == API]  # fmt: skip
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    # Policies add up: the consumers' (Kafka egress) must not select the API's pods.
    selecting = {name for name, spec in policies.items() if _selects(spec["podSelector"], labels)}
    assert selecting == {API}
    consumer = next(m for m in manifests if m["kind"] == "Deployment" and
                    m["metadata"]["name"] == "search-indexer")  # fmt: skip
    assert _selects(policies["cdc-consumers"]["podSelector"],
                    consumer["spec"]["template"]["metadata"]["labels"])  # fmt: skip
    policy = policies[API]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    peers = [p for rule in policy["ingress"] for p in rule["from"]]
    namespaces = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers
    }
    assert namespaces == {"ingress-nginx", "monitoring"}
    assert all(rule["ports"] == [{"protocol": "TCP", "port": 8080}] for rule in policy["ingress"])
    assert all(rule.get("to") for rule in policy["egress"])
    blocks = [p["ipBlock"]["cidr"] for r in policy["egress"] for p in r["to"] if "ipBlock" in p]
    assert blocks == [POD_IDENTITY_AGENT, VPC[overlay]]
    ports = {p["port"] for r in policy["egress"] for p in r["ports"]}
    assert ports == {53, 80, 5432, 443}  # DNS, Pod Identity, PostgreSQL, AWS endpoints


def test_the_keys_secret_is_never_in_the_manifests_and_its_example_holds_no_key() -> None:
    for overlay in OVERLAYS:
        secrets = [
            m for m in render_kustomization(K8S / "overlays" / overlay) if m["kind"] == "Secret"
        ]
        assert not [s for s in secrets if s["metadata"]["name"] == "query-api-keys"], overlay
    example = K8S / "base" / API / "keys-secret.example.yaml"
    resources = yaml.safe_load((K8S / "base" / API / "kustomization.yaml").read_text())
    assert example.name not in resources["resources"]
    secret = yaml.safe_load(example.read_text())
    assert secret["metadata"]["name"] == "query-api-keys"
    text = secret["stringData"]["keys"]
    assert all(re.fullmatch(r"[\w-]+:(read|admin):sha256:[0-9a-f]{64}", line) for line in
               text.splitlines()), text  # fmt: skip
    # The service reads it as it is (its own parser), and the hashed value is the example the
    # comment names, not a key anyone uses.
    needs_api()
    from query_api._keys import KeyRing, parse_keys

    ring = KeyRing(parse_keys(text))
    found = ring.match("example-key-do-not-use")
    assert found is not None and found.scope == "read"


@pytest.fixture(scope="module")
def compose_api() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service: dict[str, Any] = compose["services"][API]
    return service


def test_compose_runs_the_api_on_8080_with_a_local_key(compose_api: dict[str, Any]) -> None:
    assert compose_api["build"]["dockerfile"] == "docker/service/Dockerfile"
    assert compose_api["build"]["args"] == {"SERVICE": API, "PACKAGE": "query_api"}
    assert compose_api["ports"] == ["127.0.0.1:8080:8080"]
    assert compose_api["read_only"] is True
    assert compose_api["healthcheck"]["test"][-1].count("/readyz") == 1
    env = compose_api["environment"]
    deps = compose_api["depends_on"]
    for store in ("sink-postgres", "localstack"):
        assert deps[store]["condition"] == "service_healthy", store
    assert "@sink-postgres:5432/stats" in env["DATABASE_URL"]
    assert "@sink-postgres:5432/event_store" in env["EVENT_STORE_URL"]
    [mount] = [v for v in compose_api["volumes"] if v.endswith(f":{env['API_KEYS_FILE']}:ro")]
    text = (ROOT / mount.split(":")[0]).read_text()
    assert "local-dev-key-not-a-secret" not in text  # its hash only
    needs_api()
    from query_api._keys import KeyRing, parse_keys

    found = KeyRing(parse_keys(text)).match("local-dev-key-not-a-secret")
    assert found is not None and found.scope == "read"


def _api_settings() -> frozenset[str]:
    """The environment names of query_api's settings classes (pydantic-settings)."""
    from pydantic_settings import BaseSettings

    module = importlib.import_module("query_api.settings")
    classes = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, BaseSettings) and c.__module__ == module.__name__
    ]
    assert classes, "query_api.settings defines no settings class"
    return frozenset(f.upper() for c in classes for f in c.model_fields)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_manifests_name_only_the_api_s_settings(overlay: str) -> None:
    needs_api()
    allowed = _api_settings() | AWS_SDK_ENV
    objects = _objects(overlay)
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    named = set(objects["ConfigMap"]["data"]) | {e["name"] for e in container["env"]}
    assert named <= allowed, sorted(named - allowed)


def test_compose_names_only_the_api_s_settings(compose_api: dict[str, Any]) -> None:
    needs_api()
    unknown = set(compose_api["environment"]) - _api_settings() - AWS_SDK_ENV
    assert not unknown, sorted(unknown)


def test_the_service_image_builds_the_api() -> None:
    """`python -m query_api` is what the image runs, and the one Dockerfile copies every
    workspace library the API depends on."""
    needs_api()
    from .test_dockerfiles import SERVICE_DOCKERFILE, _workspace_deps

    assert (ROOT / "services" / API / "src" / "query_api" / "__main__.py").is_file()
    text = SERVICE_DOCKERFILE.read_text()
    for lib in sorted(_workspace_deps(ROOT / "services" / API)):
        assert f"COPY libs/{lib}/ libs/{lib}/" in text, f"{API} image misses libs/{lib}"
