"""Every Kubernetes manifest: rendered like `kubectl kustomize`, validated against the
Kubernetes OpenAPI schemas (CRD objects structurally), checked for the platform's rules and
scanned with checkov."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cdc_operator import TERMINATION_GRACE_S, build_deployment, parse_spec, render_kustomization

from .conftest import DEPLOYED, ROOT, SERVICES

K8S = ROOT / "k8s"
K8S_VERSION = "1.31"
OVERLAYS = ("local", "staging", "prod")
KUSTOMIZATIONS = (
    "base",
    *(f"overlays/{o}" for o in OVERLAYS),
    "platform",
    "monitoring",
    "operator/deploy",
)
RUNTIME_GRACE_S = 25
# Kinds that kubernetes-validate has no schema for: checked structurally below.
CUSTOM = {
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PrometheusRule"},
    "kafka.strimzi.io/v1beta2": {
        "Kafka",
        "KafkaNodePool",
        "KafkaConnect",
        "KafkaConnector",
        "KafkaTopic",
        "KafkaUser",
    },
    "external-secrets.io/v1": {"SecretStore", "ExternalSecret"},
    "cdc.example.com/v1alpha1": {"CdcConsumer"},
}
METRICS = {
    "cdc_messages_total",
    "cdc_batch_duration_seconds",
    "cdc_end_to_end_latency_seconds",
    "cdc_consumer_lag",
    "cdc_retries_total",
    "cdc_rebalances_total",
    "cdc_commit_failures_total",
}


def _render(rel: str) -> list[dict[str, Any]]:
    return render_kustomization(K8S / rel)


def _by(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


@pytest.mark.parametrize("rel", KUSTOMIZATIONS)
def test_manifests_validate_against_the_kubernetes_schemas(rel: str) -> None:
    manifests = _render(rel)
    assert manifests
    for m in manifests:
        if m["kind"] in CUSTOM.get(m["apiVersion"], set()):
            assert m["metadata"]["name"]
            assert isinstance(m["spec"], dict)
            continue
        kubernetes_validate.validate(m, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_consumer_deployments_follow_the_platform_rules(overlay: str) -> None:
    manifests = _render(f"overlays/{overlay}")
    deployments = _by(manifests, "Deployment")
    assert set(deployments) == set(DEPLOYED)  # the read API's own rules: test_query_api.py
    namespace = _by(manifests, "Namespace")["cdc-consumers"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, dep in deployments.items():
        assert dep["metadata"]["namespace"] == "cdc-consumers"
        # `kubectl scale` owns the replica count: no manifest may set it.
        assert "replicas" not in dep["spec"], f"{name}: replicas would undo kubectl scale"
        pod = dep["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > RUNTIME_GRACE_S
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} >= {
            "topology.kubernetes.io/zone"
        }
        (container,) = pod["containers"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/livez"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["image"].startswith(f"cdc-platform/{name}")
        assert container["envFrom"] == [{"configMapRef": {"name": name}}]
        assert pod["serviceAccountName"] == name


def test_every_service_has_its_companions() -> None:
    manifests = _render("overlays/prod")
    for kind in ("ServiceAccount", "ConfigMap", "PodDisruptionBudget", "ServiceMonitor"):
        assert set(SERVICES) <= set(_by(manifests, kind)), kind
    for name, pdb in _by(manifests, "PodDisruptionBudget").items():
        assert pdb["spec"]["maxUnavailable"] == 1, name
    services = _by(manifests, "Service")
    for name in SERVICES:
        assert services[f"{name}-metrics"]["spec"]["ports"][0]["port"] == 8080
        monitor = _by(manifests, "ServiceMonitor")[name]
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_configmaps_use_the_services_settings_and_topics() -> None:
    from .test_compose import ALLOWED_SETTINGS

    maps = _by(_render("overlays/staging"), "ConfigMap")
    for name in SERVICES:
        data = maps[name]["data"]
        assert set(data) <= ALLOWED_SETTINGS[name], name
        assert data["KAFKA_GROUP_ID"] == f"{name}-group"
        assert data["DLQ_TOPIC"] == f"{name}.dlq"
        assert data["KAFKA_BOOTSTRAP_SERVERS"] == (
            "cdc-platform-kafka-bootstrap.kafka.svc.cluster.local:9093"
        )
        # Its own KafkaUser over TLS, the password from its Secret, never in a ConfigMap.
        assert (data["KAFKA_SECURITY_PROTOCOL"], data["KAFKA_SASL_MECHANISM"]) == (
            "SASL_SSL",
            "SCRAM-SHA-512",
        )
        assert data["KAFKA_SASL_USERNAME"] == name
        assert "KAFKA_SASL_PASSWORD" not in data
    assert maps["analytics-flusher"]["data"]["S3_BUCKET"] == "cdc-platform-data-lake-staging"
    assert maps["search-indexer"]["data"]["DYNAMODB_TABLE"] == "product-search-index"


def test_topics_cover_what_the_consumers_read() -> None:
    topics = {
        t["spec"]["topicName"]: t["spec"] for t in _render("platform") if t["kind"] == "KafkaTopic"
    }
    maps = _by(_render("base"), "ConfigMap")
    for name in SERVICES:
        for pattern in maps[name]["data"]["KAFKA_TOPICS"].split(","):
            matched = [t for t in topics if re.fullmatch(pattern.lstrip("^"), t)]
            assert matched, f"{name} reads {pattern}: no KafkaTopic"
        assert f"{name}.dlq" in topics
    for name, spec in topics.items():
        assert spec["partitions"] >= 1 and spec["config"]["retention.ms"] > 0, name


def test_strimzi_cluster_and_connector() -> None:
    manifests = _render("platform")
    kafka = _by(manifests, "Kafka")["cdc-platform"]
    assert kafka["metadata"]["namespace"] == "kafka"
    # One listener, TLS and SCRAM, and ACLs enforced: no unauthenticated way in.
    [listener] = kafka["spec"]["kafka"]["listeners"]
    assert (listener["port"], listener["tls"], listener["authentication"]["type"]) == (
        9093,
        True,
        "scram-sha-512",
    )
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    peers = listener["networkPolicyPeers"]
    admitted = [p.get("namespaceSelector", {}).get("matchLabels", {}) for p in peers]
    assert {"kubernetes.io/metadata.name": "cdc-consumers"} in admitted
    assert any(p.get("podSelector", {}).get("matchLabels", {}).get("strimzi.io/kind")
               == "KafkaConnect" for p in peers)  # fmt: skip
    connect = _by(manifests, "KafkaConnect")["cdc-connect"]["spec"]
    assert connect["authentication"]["username"] == "cdc-connect"
    assert connect["bootstrapServers"].endswith(":9093")
    connector = _by(manifests, "KafkaConnector")["shop-postgres"]["spec"]
    assert connector["class"] == "io.debezium.connector.postgresql.PostgresConnector"
    config = connector["config"]
    assert config["topic.prefix"] == "dbserver1"
    assert config["plugin.name"] == "pgoutput"
    assert config["database.dbname"] == "shop"
    # Credentials come from the Secret through Strimzi's config provider, never inline.
    for key in ("database.user", "database.password", "database.hostname"):
        assert config[key].startswith("${secrets:kafka/shop-db-credentials:"), key
    assert set(config["table.include.list"].split(",")) == {
        f"public.{t}" for t in ("customers", "products", "orders", "order_items")
    }


def test_alerts_and_dashboards_use_the_runtime_metrics() -> None:
    """Every dashboard ships as a ConfigMap the Grafana sidecar loads; the overview and the
    alerts cover the runtime's figures. (That each metric they name is one the code registers
    is tests/unit/test_monitoring.py's.)"""
    rendered = _render("monitoring")
    rule = _by(rendered, "PrometheusRule")["cdc-consumers"]
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "CdcConsumerLagHigh",
        "CdcConsumerLagGrowing",
        "CdcDeadLetterGrowth",
        "CdcDeadLetterRateHigh",
        "CdcEndToEndLatencyHigh",
        "CdcSinkErrorRateHigh",
        "CdcDbPoolExhausted",
        "CdcConsumerNotReady",
        "CdcConsumerRestarting",
    } <= set(alerts)
    shipped = {
        name: json.loads(body)
        for cm in _by(rendered, "ConfigMap").values()
        if cm["metadata"]["labels"].get("grafana_dashboard") == "1"
        for name, body in cm["data"].items()
    }
    files = {p.name for p in (K8S / "monitoring/dashboards").glob("*.json")}
    assert set(shipped) == files
    overview = shipped["cdc-consumers.json"]
    targets = [t["expr"] for p in overview["panels"] for t in p.get("targets", [])]
    used = set(re.findall(r"\bcdc_[a-z_]+", " ".join(targets) + " ".join(alerts.values())))
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in used}
    assert used >= METRICS, METRICS - used
    titles = " ".join(p["title"].lower() for p in overview["panels"])
    for word in ("throughput", "lag", "p99", "dead-letter", "retries", "errors", "rebalances"):
        assert word in titles


def test_crd_schema_accepts_the_example_and_matches_the_operator() -> None:
    crd = yaml.safe_load((K8S / "crds/cdcconsumers.cdc.example.com.yaml").read_text())
    kubernetes_validate.validate(crd, K8S_VERSION, strict=True)
    assert crd["spec"]["group"] == "cdc.example.com"
    version = crd["spec"]["versions"][0]
    props = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    example = yaml.safe_load((K8S / "operator/examples/search-indexer.yaml").read_text())
    assert set(example["spec"]) <= set(props)
    parsed = parse_spec(example["spec"])
    assert parsed.max_replicas == 6
    import jsonschema

    jsonschema.validate(example["spec"], version["schema"]["openAPIV3Schema"]["properties"]["spec"])


def test_operator_deployment_matches_the_base_pod_template() -> None:
    example = yaml.safe_load((K8S / "operator/examples/search-indexer.yaml").read_text())
    built = build_deployment("search-indexer", "cdc-consumers", parse_spec(example["spec"]))
    kubernetes_validate.validate(built, K8S_VERSION, strict=True)
    base = _by(_render("base"), "Deployment")["search-indexer"]
    b_pod, o_pod = base["spec"]["template"]["spec"], built["spec"]["template"]["spec"]
    for key in (
        "securityContext",
        "terminationGracePeriodSeconds",
        "volumes",
        "automountServiceAccountToken",
        "topologySpreadConstraints",
    ):
        assert o_pod[key] == b_pod[key], key
    for key in (
        "securityContext",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
        "volumeMounts",
        "ports",
    ):
        assert o_pod["containers"][0][key] == b_pod["containers"][0][key], key
    assert base["spec"]["strategy"] == built["spec"]["strategy"]
    assert b_pod["terminationGracePeriodSeconds"] == TERMINATION_GRACE_S


def test_checkov_passes_on_the_rendered_manifests(
    checkov: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    for rel in ("overlays/staging", "overlays/prod", "platform", "operator/deploy"):
        out = tmp_path / rel.replace("/", "-")
        out.mkdir()
        for i, m in enumerate(_render(rel)):
            (out / f"{i:03d}-{m['kind']}-{m['metadata']['name']}.yaml").write_text(
                yaml.safe_dump(m, sort_keys=False)
            )
    report = checkov(tmp_path, "kubernetes", K8S / ".checkov.yaml")
    assert report["passed"] > 0
    failed = sorted(f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["failed"])
    assert not failed, "\n".join(failed)


def test_the_operator_is_confined_to_the_consumers_namespace() -> None:
    """Its Role and RoleBinding are in cdc-consumers, it watches only that namespace, and its
    only cluster-wide right is reading CRDs; the example CdcConsumer passes the admission
    policy the Deployment configures, and another image or ServiceAccount does not."""
    from cdc_operator import SpecError
    from cdc_operator._admission import AdmissionPolicy

    manifests = _render("operator/deploy")
    cluster_rules = [
        rule for m in manifests if m["kind"] == "ClusterRole" for rule in m.get("rules", [])
    ]
    assert cluster_rules == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        }
    ]
    [role] = [m for m in manifests if m["kind"] == "Role"]
    [binding] = [m for m in manifests if m["kind"] == "RoleBinding"]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "cdc-consumers"
    assert {"deployments", "cdcconsumers"} <= {
        r for rule in role["rules"] for r in rule["resources"]
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cdc-operator", "namespace": "cdc-operator"}
    ]
    [deployment] = [m for m in manifests if m["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--namespace", "cdc-consumers"]
    policy = AdmissionPolicy.from_env({e["name"]: e.get("value", "") for e in container["env"]})
    assert policy.require_digest
    example = yaml.safe_load((K8S / "operator/examples/search-indexer.yaml").read_text())
    policy.check("search-indexer", parse_spec(example["spec"]))
    for change in ({"image": "docker.io/library/busybox:1"}, {"serviceAccountName": "other"}):
        with pytest.raises(SpecError):
            policy.check("search-indexer", parse_spec({**example["spec"], **change}))


# What each consumer's KafkaUser may do: its own topics (read), its dead letters and their
# status topic (prefix), the statistics' alerts (write), its group, idempotent writes.
def test_each_kafka_user_may_touch_only_its_own_topics_and_group() -> None:
    platform = _render("platform")
    users = _by(platform, "KafkaUser")
    strimzi_topics = [t["spec"]["topicName"] for t in _by(platform, "KafkaTopic").values()]
    maps = _by(_render("base"), "ConfigMap")
    assert set(users) == {*SERVICES, "cdc-connect", "cdc-operator"}
    for name in SERVICES:
        acls = users[name]["spec"]["authorization"]["acls"]
        read = {a["resource"]["name"] for a in acls if "Read" in a["operations"]
                and a["resource"]["type"] == "topic"}  # fmt: skip
        written = {a["resource"]["name"] for a in acls if "Write" in a["operations"]}
        groups = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"}
        assert groups == {f"{name}-group"}, name
        expected_writes = {f"{name}.dlq"} | ({"alerts.low-stock"} if name == "stats-aggregator"
                                            else set())  # fmt: skip
        assert written == expected_writes, name
        topics = maps[name]["data"]["KAFKA_TOPICS"].split(",")
        for pattern in topics:  # a name, or a regular expression over the KafkaTopics
            names = [t for t in strimzi_topics if re.fullmatch(pattern.lstrip("^"), t)]
            assert names, (name, pattern)
            for topic in names:
                assert any(topic.startswith(r) for r in read), (name, topic)
        # Nothing beyond what it reads, its dead letters and (prefix) their status topic.
        assert read <= {*topics, "dbserver1.public.", f"{name}.dlq"}, name
        cluster = [a for a in acls if a["resource"]["type"] == "cluster"]
        assert cluster == [{"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"]}]
        assert not any(op in a["operations"] for a in acls for op in ("Alter", "Delete", "All"))
    operator = users["cdc-operator"]["spec"]["authorization"]["acls"]
    assert {op for a in operator for op in a["operations"]} == {"Describe"}


def test_consumer_egress_names_every_destination() -> None:
    for overlay, cidr in (("overlays/staging", "10.40.0.0/16"), ("overlays/prod", "10.50.0.0/16")):
        policy = _by(_render(overlay), "NetworkPolicy")["cdc-consumers"]["spec"]
        assert all(rule.get("to") for rule in policy["egress"]), overlay
        blocks = [p["ipBlock"]["cidr"] for r in policy["egress"] for p in r["to"] if "ipBlock" in p]
        assert blocks == ["169.254.170.23/32", cidr], overlay
        kafka = [r for r in policy["egress"] if {"protocol": "TCP", "port": 9093} in r["ports"]]
        [peer] = kafka[0]["to"]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kafka"}


def test_consumers_get_their_kafka_password_and_ca_from_their_own_secret() -> None:
    manifests = _render("base")
    externals = _by(manifests, "ExternalSecret")
    deployments = _by(manifests, "Deployment")
    for name in SERVICES:
        secret = f"{name}-kafka"
        remote = {d["secretKey"]: d["remoteRef"]["key"] for d in externals[secret]["spec"]["data"]}
        assert remote == {"password": name, "ca.crt": "cdc-platform-cluster-ca-cert"}
        pod = deployments[name]["spec"]["template"]["spec"]
        [env] = [e for e in pod["containers"][0]["env"] if e["name"] == "KAFKA_SASL_PASSWORD"]
        assert env["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "password"}
        [ca] = [v for v in pod["volumes"] if v["name"] == "kafka-ca"]
        assert ca["secret"]["secretName"] == secret


def _hcl_default(path: Path, variable: str) -> Any:
    import hcl2

    with path.open(encoding="utf-8") as handle:
        blocks = hcl2.load(handle)["variable"]
    # python-hcl2 keeps string literals' quotes, the labels' too.
    [body] = [b for block in blocks for k, b in block.items() if k.strip('"') == variable]
    default = body["default"]
    return default.strip('"') if isinstance(default, str) else default


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_flusher_finds_its_lake_catalog(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flusher's settings as its pod gets them (the rendered ConfigMap as its environment)
    give, on EKS, the Glue database and the warehouse Terraform creates and its role may use
    (terraform/modules/glue-catalog); on the local cluster, a SQL catalog whose URL comes from
    an optional Secret."""
    from analytics_flusher.settings import FlusherSettings

    manifests = _render(f"overlays/{overlay}")
    data = _by(manifests, "ConfigMap")["analytics-flusher"]["data"]
    for key in (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "LAKE_CATALOG_URI",
    ):
        monkeypatch.delenv(key, raising=False)
    container = _by(manifests, "Deployment")["analytics-flusher"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {e["name"]: e for e in container.get("env", [])}
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-its-secret")  # env[...]: a secretKeyRef
    settings = FlusherSettings()  # type: ignore[call-arg]
    if overlay == "local":
        assert settings.lake_catalog == "sql"
        ref = env["LAKE_CATALOG_URI"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "analytics-flusher-lake", "key": "url", "optional": True}
        return
    assert "LAKE_CATALOG_URI" not in env
    config = settings.catalog_config()
    assert config is not None and config.kind == "glue"
    prefix = _hcl_default(ROOT / "terraform/modules/glue-catalog/variables.tf", "warehouse_prefix")
    assert config.warehouse == f"s3://cdc-platform-data-lake-{overlay}/{prefix}"
    assert config.namespace == _hcl_default(
        ROOT / f"terraform/envs/{overlay}/variables.tf", "lake_namespace"
    )
    assert config.region == data["AWS_REGION"] and config.endpoint_url is None
    assert config.access_key_id is None  # the pod's role (Pod Identity), no keys
