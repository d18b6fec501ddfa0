"""AWS MSK IAM authentication: an OAUTHBEARER token callback for librdkafka.

Imported only when ``KAFKA_SASL_MECHANISM=AWS_MSK_IAM``; credentials come from the default AWS
chain (EKS Pod Identity in the cluster).
"""

from __future__ import annotations

from collections.abc import Callable

from aws_msk_iam_sasl_signer import MSKAuthTokenProvider  # type: ignore[import-untyped]


def msk_iam_oauth_cb(region: str) -> Callable[[str], tuple[str, float]]:
    def oauth_cb(_config: str) -> tuple[str, float]:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000.0  # librdkafka wants seconds since the epoch

    return oauth_cb
