"""librdkafka settings for the lag reader from a CdcConsumer's ``spec.kafka``.

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
        config["sasl.mechanism"] = kafka.sasl_mechanism
    return config


def msk_iam_oauth_cb(region: str) -> Callable[[str], tuple[str, float]]:
    """librdkafka's ``oauth_cb``: a fresh MSK IAM token and its expiry (seconds since the
    epoch) each time the client asks."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider  # type: ignore[import-untyped]

    def oauth_cb(_config: str) -> tuple[str, float]:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000.0

    return oauth_cb
