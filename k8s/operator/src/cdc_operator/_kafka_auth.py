"""librdkafka settings for the lag reader from a CdcConsumer's ``spec.kafka``.

SCRAM (the in-cluster Kafka): the lag reader authenticates as the operator's own KafkaUser
``cdc-operator`` (describe-only ACLs: k8s/platform/users.yaml), whose password and the cluster
CA reach the operator's pod as ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD`` and
``KAFKA_SSL_CA_LOCATION``.

The values are the services' (``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_MECHANISM``: see
``libs/consumer-runtime``, "Settings"), so one spec configures the consumers and the operator's
reading of their lag the same way. ``AWS_MSK_IAM`` is not a librdkafka mechanism: it is
OAUTHBEARER with a token that ``aws-msk-iam-sasl-signer-python`` signs with the credentials of
the operator's own pod (EKS Pod Identity; the role needs ``kafka-cluster:Connect``,
``DescribeCluster``, ``DescribeTopic`` and ``DescribeGroup``: terraform/modules/iam).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cdc_operator._errors import SpecError
from cdc_operator._spec import KafkaSpec


def lag_reader_config(kafka: KafkaSpec) -> dict[str, Any]:
    """Security and SASL settings for a lag reader of the consumers ``kafka`` describes."""
    config: dict[str, Any] = {}
    if kafka.security_protocol:
        config["security.protocol"] = kafka.security_protocol
    if kafka.sasl_mechanism == "AWS_MSK_IAM":
        env = os.environ
        region = kafka.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            raise SpecError(
                "spec.kafka.saslMechanism AWS_MSK_IAM needs spec.kafka.region "
                "(or AWS_REGION in the operator's environment)"
            )
        config["sasl.mechanism"] = "OAUTHBEARER"
        config["oauth_cb"] = msk_iam_oauth_cb(region)
    elif kafka.sasl_mechanism:
        # SCRAM: the operator's own KafkaUser (describe only), not the consumer's, from its
        # environment (k8s/operator/deploy/kafka-credentials.yaml).
        env = os.environ
        user, password = env.get("KAFKA_SASL_USERNAME"), env.get("KAFKA_SASL_PASSWORD")
        if not user or not password:
            raise SpecError(
                f"spec.kafka.saslMechanism {kafka.sasl_mechanism}: the operator needs its own "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD to read the lag"
            )
        config.update(
            {
                "sasl.mechanism": kafka.sasl_mechanism,
                "sasl.username": user,
                "sasl.password": password,
            }
        )
    if kafka.security_protocol in ("SSL", "SASL_SSL") and os.environ.get("KAFKA_SSL_CA_LOCATION"):
        config["ssl.ca.location"] = os.environ["KAFKA_SSL_CA_LOCATION"]
    return config


def msk_iam_oauth_cb(region: str) -> Callable[[str], tuple[str, float]]:
    """librdkafka's ``oauth_cb``: a fresh MSK IAM token and its expiry (seconds since the
    epoch) each time the client asks."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider  # type: ignore[import-untyped]

    def oauth_cb(_config: str) -> tuple[str, float]:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000.0

    return oauth_cb
