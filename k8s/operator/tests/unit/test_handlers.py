"""kopf handlers called directly, as kopf would, with a fake Kubernetes API and lag reader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
import kubernetes_validate
import pytest
from cdc_operator import (
    Event,
    GroupLag,
    LagReadError,
    PartitionLag,
    SpecError,
    build_deployment,
    parse_spec,
)
from cdc_operator import _handlers as handlers
from cdc_operator._admission import AdmissionPolicy

SPEC: dict[str, Any] = {
    "image": "registry.example.com/cdc-platform/search-indexer:abc123",
    "topics": ["dbserver1.public.products"],
    "groupId": "search-indexer-group",
    "minReplicas": 1,
    "maxReplicas": 8,
    "lagThreshold": 1000,
    "scaleDownStabilizationSeconds": 300,
    "sink": {"type": "dynamodb", "table": "product-search-index", "region": "eu-west-1"},
}
UID = "5f2c-uid"


class FakeApi:
    def __init__(self) -> None:
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.deployments.get((namespace, name))

    def create_deployment(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append(("create", body["metadata"]["name"], body))
        self.deployments[(namespace, body["metadata"]["name"])] = body

    def patch_deployment(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        self.calls.append(("patch", name, body))
        current = self.deployments[(namespace, name)]
        replicas = current["spec"].get("replicas")
        self.deployments[(namespace, name)] = {
            **body,
            "spec": {**body["spec"], "replicas": replicas},
        }

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self.calls.append(("scale", name, replicas))
        self.deployments[(namespace, name)]["spec"]["replicas"] = replicas


class FakeReader:
    def __init__(self, lags: list[int] | Exception) -> None:
        self.lags = lags

    def read(self, group_id: str, topics: list[str]) -> GroupLag:
        if isinstance(self.lags, Exception):
            raise self.lags
        return GroupLag(
            group_id,
            tuple(PartitionLag(topics[0], i, 0, lag, lag) for i, lag in enumerate(self.lags)),
        )


class FakePatch:
    def __init__(self) -> None:
        self.status: dict[str, Any] = {}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    api = FakeApi()
    events: list[Event] = []
    state: dict[str, Any] = {
        "api": api,
        "events": events,
        "now": 10_000.0,
        "reader": FakeReader([0, 0, 0, 0]),
    }
    monkeypatch.setattr(handlers, "RUNTIME", handlers.Runtime())
    handlers.configure(
        api=api,
        lag_reader=lambda _spec: state["reader"],
        clock=lambda: state["now"],
        events=lambda _body, event: events.append(event),
        policy=AdmissionPolicy(("registry.example.com/cdc-platform",)),
    )
    return state


def _body(spec: Mapping[str, Any] = SPEC, status: Mapping[str, Any] | None = None) -> Any:
    return {
        "apiVersion": "cdc.example.com/v1alpha1",
        "kind": "CdcConsumer",
        "metadata": {"name": "search-indexer", "namespace": "cdc-consumers", "uid": UID},
        "spec": dict(spec),
        "status": dict(status or {}),
    }


def _reconcile(spec: Mapping[str, Any] = SPEC, patch: FakePatch | None = None) -> FakePatch:
    patch = patch or FakePatch()
    body = _body(spec)
    handlers.reconcile(
        spec=body["spec"],
        name="search-indexer",
        namespace="cdc-consumers",
        uid=UID,
        body=body,
        patch=patch,
        logger=None,
        reason="create",
    )
    return patch


def _tick(status: Mapping[str, Any], spec: Mapping[str, Any] = SPEC) -> FakePatch:
    patch = FakePatch()
    body = _body(spec, status)
    handlers.scale_by_lag(
        spec=body["spec"],
        status=body["status"],
        name="search-indexer",
        namespace="cdc-consumers",
        body=body,
        patch=patch,
        logger=None,
    )
    return patch


def test_create_builds_an_owned_valid_deployment(env: dict[str, Any]) -> None:
    patch = _reconcile()
    dep = env["api"].deployments[("cdc-consumers", "search-indexer")]
    assert dep["spec"]["replicas"] == 1
    assert dep["metadata"]["ownerReferences"][0]["uid"] == UID
    env_vars = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env_vars["KAFKA_GROUP_ID"] == "search-indexer-group"
    assert env_vars["DYNAMODB_TABLE"] == "product-search-index"
    assert patch.status["deployment"] == "search-indexer"
    assert [e.reason for e in env["events"]] == ["Created"]
    kubernetes_validate.validate(dep, "1.31", strict=True)


def test_update_patches_everything_but_replicas(env: dict[str, Any]) -> None:
    _reconcile()
    env["api"].scale_deployment("cdc-consumers", "search-indexer", 5)  # kubectl scale / timer
    _reconcile({**SPEC, "image": "registry.example.com/cdc-platform/search-indexer:def456"})
    kind, _, body = env["api"].calls[-1]
    assert kind == "patch"
    assert "replicas" not in body["spec"]
    dep = env["api"].deployments[("cdc-consumers", "search-indexer")]
    assert dep["spec"]["replicas"] == 5
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":def456")


def test_a_foreign_deployment_is_not_taken_over(env: dict[str, Any]) -> None:
    foreign = build_deployment("search-indexer", "cdc-consumers", parse_spec(SPEC))
    env["api"].deployments[("cdc-consumers", "search-indexer")] = foreign
    with pytest.raises(kopf.PermanentError, match="not owned"):
        _reconcile()
    assert [e.reason for e in env["events"]] == ["NotOwner"]


def test_invalid_spec_is_a_permanent_error(env: dict[str, Any]) -> None:
    with pytest.raises(kopf.PermanentError, match=r"spec\.maxReplicas"):
        _reconcile({**SPEC, "maxReplicas": 0})


def test_timer_scales_up_records_status_and_emits_an_event(env: dict[str, Any]) -> None:
    _reconcile()
    env["events"].clear()
    env["reader"] = FakeReader([1500, 1500, 0, 0])
    patch = _tick({})
    assert env["api"].calls[-1] == ("scale", "search-indexer", 3)
    assert patch.status["totalLag"] == 3000
    assert patch.status["partitions"] == 4
    assert patch.status["desiredReplicas"] == 3
    assert patch.status["lagByTopic"] == {"dbserver1.public.products": 3000}
    assert [e.reason for e in env["events"]] == ["Scaled"]
    assert "scale up 1 -> 3" in env["events"][0].message


def test_timer_caps_at_partitions_then_stabilises_before_scaling_down(
    env: dict[str, Any],
) -> None:
    _reconcile()
    env["reader"] = FakeReader([50_000, 50_000])  # 2 partitions, 100 replicas' worth of lag
    status = _tick({}).status
    assert env["api"].deployments[("cdc-consumers", "search-indexer")]["spec"]["replicas"] == 2
    env["reader"] = FakeReader([0, 0])
    env["now"] += 30
    status = {**status, **_tick(status).status}
    assert env["api"].deployments[("cdc-consumers", "search-indexer")]["spec"]["replicas"] == 2
    assert "stabilisation window" in status["lastDecision"]
    env["now"] += 301
    _tick(status)
    assert env["api"].deployments[("cdc-consumers", "search-indexer")]["spec"]["replicas"] == 1


def test_timer_with_autoscale_off_only_reports(env: dict[str, Any]) -> None:
    _reconcile()
    env["reader"] = FakeReader([9000])
    patch = _tick({}, {**SPEC, "autoscale": False})
    assert not [c for c in env["api"].calls if c[0] == "scale"]
    assert patch.status["totalLag"] == 9000
    assert patch.status["lastDecision"].startswith("autoscale off")


def test_lag_errors_never_scale_and_warn_once(env: dict[str, Any]) -> None:
    _reconcile()
    env["events"].clear()
    env["reader"] = FakeReader(LagReadError("cannot read the lag: broker down"))
    first = _tick({})
    second = _tick(first.status)
    assert not [c for c in env["api"].calls if c[0] == "scale"]
    assert first.status["lastError"] == second.status["lastError"]
    assert [e.reason for e in env["events"]] == ["LagUnavailable"]


DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"image": "docker.io/attacker/miner:latest"}, "ImageNotAllowed"),
        ({"image": "registry.example.com/cdc-platform/not-a-consumer:1"}, "ImageNotAllowed"),
        ({"image": "registry.example.com/other-team/search-indexer:1"}, "ImageNotAllowed"),
        ({"image": "search-indexer:abc123"}, "ImageNotAllowed"),
        ({"serviceAccountName": "analytics-flusher"}, "ServiceAccountNotAllowed"),
    ],
)
def test_a_spec_outside_the_platform_is_refused_with_a_condition(
    env: dict[str, Any], change: dict[str, str], reason: str
) -> None:
    patch = FakePatch()
    with pytest.raises(kopf.PermanentError):
        _reconcile({**SPEC, **change}, patch)
    [condition] = patch.status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Admitted",
        "False",
        reason,
    )
    assert env["api"].deployments == {}  # nothing created
    assert [(e.type, e.reason) for e in env["events"]] == [("Warning", reason)]


def test_a_refused_update_leaves_the_running_deployment_alone(env: dict[str, Any]) -> None:
    patch = _reconcile()
    assert patch.status["conditions"][0]["status"] == "True"
    before = env["api"].deployments[("cdc-consumers", "search-indexer")]
    with pytest.raises(kopf.PermanentError):
        _reconcile({**SPEC, "image": "docker.io/attacker/miner:latest"})
    assert env["api"].deployments[("cdc-consumers", "search-indexer")] == before
    image = before["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == SPEC["image"]


def test_its_own_service_account_and_a_digest_are_admitted(env: dict[str, Any]) -> None:
    handlers.configure(
        policy=AdmissionPolicy(("registry.example.com/cdc-platform",), require_digest=True)
    )
    with pytest.raises(kopf.PermanentError, match="digest"):
        _reconcile()  # a tag only
    pinned = {
        **SPEC,
        "image": f"registry.example.com/cdc-platform/search-indexer@{DIGEST}",
        "serviceAccountName": "search-indexer",
    }
    _reconcile(pinned)
    dep = env["api"].deployments[("cdc-consumers", "search-indexer")]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(DIGEST)


def test_the_policy_comes_from_the_operators_environment() -> None:
    policy = AdmissionPolicy.from_env(
        {
            "CDC_OPERATOR_ALLOWED_REGISTRIES": " 1.dkr.ecr.eu-west-1.amazonaws.com/cdc-platform/ ,"
            "registry.local:5000/cdc-platform",
            "CDC_OPERATOR_REQUIRE_DIGEST": "true",
        }
    )
    assert policy == AdmissionPolicy(
        ("1.dkr.ecr.eu-west-1.amazonaws.com/cdc-platform", "registry.local:5000/cdc-platform"),
        require_digest=True,
    )
    spec = parse_spec(
        {**SPEC, "image": f"registry.local:5000/cdc-platform/stats-aggregator:v1@{DIGEST}"}
    )
    policy.check("stats-aggregator", spec)  # a port in the registry, a tag and a digest
    nothing = AdmissionPolicy.from_env({})
    with pytest.raises(SpecError, match="CDC_OPERATOR_ALLOWED_REGISTRIES"):
        nothing.check("stats-aggregator", spec)
