"""MSK IAM authentication, one setting for every Kafka client of the platform.

``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` + ``KAFKA_SASL_MECHANISM=AWS_MSK_IAM`` (+ ``AWS_REGION``)
must give the services' consumer and dead-letter producer, the operator CLI and the operator's
lag reader the same librdkafka settings: OAUTHBEARER with a token callback. The token is checked
the way MSK checks it: a SigV4 presigned ``kafka-cluster:Connect`` URL, verified here with the
secret key of the credentials the pod has (fixed ones: what EKS Pod Identity would hand it),
independently of the library that signed it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

REGION = "eu-west-1"
ACCESS_KEY = "AKIDEXAMPLEROLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "pod-identity/session+token="


@pytest.fixture
def role_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credentials of the pod's role, as the default chain finds them."""
    for name in ("AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "b-1.msk.example:9098")
    monkeypatch.setenv("KAFKA_TOPICS", "dbserver1.public.products")


def _verify_token(token: str, expiry_s: float) -> dict[str, str]:
    """The presigned URL inside ``token``, its SigV4 signature checked with SECRET_KEY."""
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = params.pop("X-Amz-Signature")
    params.pop("User-Agent", None)  # added after signing
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )
    empty_payload = hashlib.sha256(b"").hexdigest()
    canonical = "\n".join(["GET", "/", query, f"host:{parts.hostname}", "", "host", empty_payload])
    scope = params["X-Amz-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + SECRET_KEY).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, signature), "token not signed with the role's key"
    assert parts.hostname == f"kafka.{REGION}.amazonaws.com"
    assert params["Action"] == "kafka-cluster:Connect"
    assert params["X-Amz-Credential"].startswith(f"{ACCESS_KEY}/")
    assert scope.endswith(f"/{REGION}/kafka-cluster/aws4_request")
    assert params["X-Amz-Security-Token"] == SESSION_TOKEN
    assert time.time() < expiry_s <= time.time() + 900 + 5  # seconds, as librdkafka wants
    return params


def _check(config: dict[str, Any]) -> None:
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "OAUTHBEARER"  # librdkafka has no AWS_MSK_IAM
    assert "sasl.username" not in config and "sasl.password" not in config
    oauth_cb: Callable[[str], tuple[str, float]] = config["oauth_cb"]
    token, expiry_s = oauth_cb("")
    _verify_token(token, expiry_s)


@pytest.mark.usefixtures("role_credentials")
def test_a_service_consumer_and_dead_letter_producer() -> None:
    from consumer_runtime import RuntimeSettings

    settings = RuntimeSettings.load()
    _check(settings.consumer_config("search-indexer"))
    _check(settings.producer_config("search-indexer"))


@pytest.mark.usefixtures("role_credentials")
def test_the_operator_cli() -> None:
    from cdc_cli._connect import kafka_config

    _check(kafka_config("b-1.msk.example:9098"))


@pytest.mark.usefixtures("role_credentials")
def test_the_operator_lag_reader_and_the_consumers_it_deploys() -> None:
    from cdc_operator import build_deployment, parse_spec
    from cdc_operator._kafka_auth import lag_reader_config

    spec = parse_spec(
        {
            "image": "registry.example.com/cdc-platform/search-indexer:abc",
            "topics": ["dbserver1.public.products"],
            "groupId": "search-indexer-group",
            "kafka": {
                "bootstrapServers": "b-1.msk.example:9098",
                "securityProtocol": "SASL_SSL",
                "saslMechanism": "AWS_MSK_IAM",
                "region": REGION,
            },
        }
    )
    _check(lag_reader_config(spec.kafka))
    container = build_deployment("search-indexer", "cdc-consumers", spec)["spec"]["template"][
        "spec"
    ]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["KAFKA_SASL_MECHANISM"], env["KAFKA_SECURITY_PROTOCOL"], env["AWS_REGION"]) == (
        "AWS_MSK_IAM",
        "SASL_SSL",
        REGION,
    )


def test_msk_iam_without_tls_or_region_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from cdc_operator import SpecError, parse_spec
    from cdc_operator._kafka_auth import lag_reader_config

    base = {"image": "i", "topics": ["t"], "groupId": "g"}
    with pytest.raises(SpecError, match="SASL_SSL"):
        parse_spec({**base, "kafka": {"saslMechanism": "AWS_MSK_IAM"}})
    with pytest.raises(SpecError, match="saslMechanism"):
        parse_spec({**base, "kafka": {"saslMechanism": "AWS_MSK_IAM_TYPO"}})
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    spec = parse_spec(
        {**base, "kafka": {"securityProtocol": "SASL_SSL", "saslMechanism": "AWS_MSK_IAM"}}
    )
    with pytest.raises(SpecError, match="region"):
        lag_reader_config(spec.kafka)


@pytest.mark.usefixtures("role_credentials")
def test_a_token_from_other_credentials_does_not_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a token signed with another key is refused."""
    from consumer_runtime import RuntimeSettings

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another-secret-key")
    token, expiry_s = RuntimeSettings.load().consumer_config("x")["oauth_cb"]("")
    with pytest.raises(AssertionError, match="role's key"):
        _verify_token(token, expiry_s)
