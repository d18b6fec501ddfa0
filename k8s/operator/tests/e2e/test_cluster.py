"""Opt-in: the operator against a real cluster (kind, minikube, EKS).

Run with ``CDC_K8S_E2E=1`` after installing the CRD (k8s/crds) on the cluster of the current
kube context; the test creates a CdcConsumer in a scratch namespace, waits for the operator's
Deployment and removes everything again.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest
from cdc_operator import API_GROUP, API_VERSION, KubeApiError

pytestmark = pytest.mark.skipif(
    os.environ.get("CDC_K8S_E2E") != "1",
    reason="needs a Kubernetes cluster with the CdcConsumer CRD and the operator running: "
    "set CDC_K8S_E2E=1 to run",
)


def test_cdcconsumer_gets_an_owned_deployment() -> None:
    from kubernetes import client, config

    config.load_kube_config()
    namespace = f"cdc-e2e-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api()
    custom = client.CustomObjectsApi()
    apps = client.AppsV1Api()
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        body: dict[str, Any] = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "CdcConsumer",
            "metadata": {"name": "search-indexer"},
            "spec": {
                "image": "busybox:1.36",
                "topics": ["dbserver1.public.products"],
                "groupId": "search-indexer-group",
                "command": ["sleep", "3600"],
            },
        }
        custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, "cdcconsumers", body
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                dep = apps.read_namespaced_deployment("search-indexer", namespace)
                assert dep.metadata.owner_references[0].kind == "CdcConsumer"
                return
            except client.ApiException as exc:
                if exc.status != 404:
                    raise KubeApiError(str(exc)) from exc
            time.sleep(2)
        pytest.fail("the operator created no Deployment within 120 s")
    finally:
        core.delete_namespace(namespace)
