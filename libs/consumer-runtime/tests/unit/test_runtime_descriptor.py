"""``ServiceDescriptor``: running a service from its descriptor, lazy references, discovery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from consumer_runtime import (
    SERVICES_GROUP,
    BaseSink,
    Batch,
    CommitStrategy,
    Message,
    Offsets,
    RuntimeSettings,
    ServiceDescriptor,
    _descriptor,
    services,
)


class _Sink(BaseSink[bytes]):
    def write_batch(self, batch: Batch[bytes]) -> Offsets | None:
        return None


def _decode(message: Message) -> bytes | None:
    return message.value()


def _descriptor_of(**changes: Any) -> ServiceDescriptor[RuntimeSettings, bytes]:
    fields: dict[str, Any] = {
        "name": "demo",
        "topics": ("orders", r"^dbserver1\.public\..*"),
        "strategy": CommitStrategy.COMMIT_AFTER_FLUSH,
        "settings": RuntimeSettings,
        "decoder": lambda settings: _decode,
        "sink": lambda settings: _Sink(),
        "replay_safety": "writes are idempotent",
        "sink_description": "nowhere",
    }
    return ServiceDescriptor(**{**fields, **changes})


def test_run_reads_settings_once_builds_the_decoder_and_runs_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("KAFKA_TOPICS", "orders")
    calls: list[tuple[Any, ...]] = []
    built: list[RuntimeSettings] = []

    def decoder(settings: RuntimeSettings) -> Any:
        built.append(settings)
        return _decode

    def fake_run_service(name: str, settings: Any, dec: Any, sink: Any, **kw: Any) -> int:
        calls.append((name, settings, dec, sink, kw))
        return 0

    monkeypatch.setattr(_descriptor, "run_service", fake_run_service)
    descriptor = _descriptor_of(decoder=decoder, strategy=CommitStrategy.SINK_MANAGED)
    assert descriptor.run(install_signal_handlers=False) == 0
    ((name, settings, dec, sink, kw),) = calls
    assert name == "demo"
    assert isinstance(settings, RuntimeSettings)
    assert settings.kafka_topics == ("orders",)
    assert built == [settings]  # the decoder got the very settings the runtime runs with
    assert dec is _decode
    assert sink is descriptor.sink
    assert kw == {"strategy": CommitStrategy.SINK_MANAGED, "install_signal_handlers": False}


def test_run_reports_bad_settings_on_stderr_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_TOPICS", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")

    def never(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("run_service must not start with bad settings")

    monkeypatch.setattr(_descriptor, "run_service", never)
    assert _descriptor_of().run() == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: ")
    assert "KAFKA_TOPICS" in err


def test_topics_patterns_and_strategy_facts() -> None:
    descriptor = _descriptor_of()
    assert descriptor.subscribes_to("orders")
    assert descriptor.subscribes_to("dbserver1.public.products")
    assert not descriptor.subscribes_to("orders.dlq")
    assert descriptor.matching(["x", "orders", "dbserver1.public.a"]) == [
        "dbserver1.public.a",
        "orders",
    ]
    assert not descriptor.sink_managed
    assert _descriptor_of(strategy=CommitStrategy.SINK_MANAGED).sink_managed


def test_lazy_references_are_imported_only_when_loaded() -> None:
    descriptor = _descriptor_of(verifier="json:dumps", commands="json.decoder:JSONDecoder.decode")
    assert descriptor.load_verifier() is json.dumps
    assert descriptor.load_commands() is json.decoder.JSONDecoder.decode
    assert descriptor.load_dlq_commands() is None
    with pytest.raises(ValueError, match="module:attribute"):
        _descriptor_of(verifier="json.dumps")
    with pytest.raises(ValueError, match="at least one topic"):
        _descriptor_of(topics=())


@dataclass
class _EntryPoint:
    name: str
    target: Any
    value: str = "pkg.service:SERVICE"

    def load(self) -> Any:
        return self.target


def test_services_are_found_by_entry_point_sorted_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    groups: list[str] = []
    points = [
        _EntryPoint("zeta", _descriptor_of(name="zeta")),
        _EntryPoint("demo", _descriptor_of()),
    ]

    def fake_entry_points(*, group: str) -> list[_EntryPoint]:
        groups.append(group)
        return points

    monkeypatch.setattr(_descriptor, "entry_points", fake_entry_points)
    found = services()
    assert list(found) == ["demo", "zeta"]
    assert groups == [SERVICES_GROUP] == ["cdc.services"]

    points[:] = [_EntryPoint("other", _descriptor_of())]
    with pytest.raises(ValueError, match="names the service 'demo'"):
        services()
    points[:] = [_EntryPoint("demo", object())]
    with pytest.raises(TypeError, match="not a ServiceDescriptor"):
        services()
