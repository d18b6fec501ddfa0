"""The Deployment a CdcConsumer owns, built from its spec. Pure: a dict in, a dict out.

The pod template matches the hand-written manifests of k8s/base (probes on /livez and /readyz,
restricted securityContext, read-only root filesystem with an emptyDir /tmp, a grace period
above the runtime's 25 s), which a test checks, so both ways of deploying behave alike.
``replicas`` is only set when the Deployment is created: afterwards the scaler owns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdc_operator._spec import ConsumerSpec

API_GROUP = "cdc.example.com"
API_VERSION = "v1alpha1"
KIND = "CdcConsumer"
MANAGED_BY = "cdc-operator"
HEALTH_PORT = 8080
#: Where a SCRAM consumer finds the Kafka cluster's CA (the base manifests mount it there too).
KAFKA_CA_DIR = "/etc/kafka-ca"
# The runtime's SHUTDOWN_GRACE_S (25 s) to finish, flush and commit, plus 10 s for close().
TERMINATION_GRACE_S = 35
_UID = 10001
_DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def container_env(spec: ConsumerSpec, name: str) -> list[dict[str, Any]]:
    """Environment variables with the services' settings names; ``spec.env`` wins."""
    plain: dict[str, str] = {
        "KAFKA_BOOTSTRAP_SERVERS": spec.kafka.bootstrap_servers,
        "KAFKA_GROUP_ID": spec.group_id,
        "KAFKA_TOPICS": ",".join(spec.topics),
        "HEALTH_PORT": str(HEALTH_PORT),
    }
    optional = {
        "KAFKA_SECURITY_PROTOCOL": spec.kafka.security_protocol,
        "KAFKA_SASL_MECHANISM": spec.kafka.sasl_mechanism,
        "DYNAMODB_TABLE": spec.sink.table,
        "S3_BUCKET": spec.sink.bucket,
        "AWS_REGION": spec.sink.region or spec.kafka.region,
        "AWS_ENDPOINT_URL": spec.sink.endpoint_url,
    }
    plain.update({k: v for k, v in optional.items() if v})
    kafka_secret = spec.kafka.credentials_secret
    if kafka_secret is not None:
        plain["KAFKA_SASL_USERNAME"] = spec.kafka.username or name
        plain["KAFKA_SSL_CA_LOCATION"] = f"{KAFKA_CA_DIR}/ca.crt"
    plain.update(spec.env)
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(plain.items())]
    if kafka_secret is not None and "KAFKA_SASL_PASSWORD" not in plain:
        env.append(_secret_env("KAFKA_SASL_PASSWORD", kafka_secret, "password"))
    secret = spec.sink.database_url_secret
    if secret is not None and "DATABASE_URL" not in plain:
        env.append(_secret_env("DATABASE_URL", secret.name, secret.key))
    return env


def build_deployment(
    name: str,
    namespace: str,
    spec: ConsumerSpec,
    owner: Mapping[str, Any] | None = None,
    *,
    replicas: int | None = None,
) -> dict[str, Any]:
    """The Deployment for CdcConsumer ``name``. ``owner`` is the CdcConsumer's metadata
    (name, uid): the Deployment is then garbage-collected with it."""
    labels = {
        **selector_labels(name),
        "app.kubernetes.io/component": "consumer",
        "app.kubernetes.io/part-of": "cdc-platform",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    probe = {"httpGet": {"path": "/livez", "port": "http"}}
    container: dict[str, Any] = {
        "name": name,
        "image": spec.image,
        "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "env": container_env(spec, name),
        "resources": spec.resources or _DEFAULT_RESOURCES,
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 30},
        "livenessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": _UID,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
    }
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    if spec.kafka.credentials_secret is not None:
        container["volumeMounts"].append(
            {"name": "kafka-ca", "mountPath": KAFKA_CA_DIR, "readOnly": True}
        )
        volumes.append(
            {
                "name": "kafka-ca",
                "secret": {
                    "secretName": spec.kafka.credentials_secret,
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                },
            }
        )
    if spec.command:
        container["command"] = list(spec.command)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": spec.service_account_name or name,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": _UID,
            "runAsGroup": _UID,
            "fsGroup": _UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(name)},
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
        "containers": [container],
        "volumes": volumes,
    }
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": KIND,
                "name": owner["name"],
                "uid": owner["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    deployment_spec: dict[str, Any] = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector_labels(name)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
        },
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if replicas is not None:
        deployment_spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": deployment_spec,
    }


def is_owned_by(deployment: Mapping[str, Any], owner_uid: str) -> bool:
    refs = deployment.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid and ref.get("controller") for ref in refs)
