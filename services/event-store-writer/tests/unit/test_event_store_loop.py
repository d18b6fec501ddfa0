"""The decoder in the real consumer loop (in memory): DLQ, skips and offsets of mixed topics."""

from __future__ import annotations

from cdc_events.testing import golden, make_user_activity
from consumer_runtime import BaseSink, Batch, CommitStrategy, Offsets, TopicPartition
from consumer_runtime.testing import SinkHarness
from event_store_writer import ChangeRow, EventDecoder, Settings, StoreRecord, UserEventRow


class RecordingSink(BaseSink[StoreRecord]):
    def __init__(self) -> None:
        self.batches: list[Batch[StoreRecord]] = []

    def write_batch(self, batch: Batch[StoreRecord]) -> Offsets | None:
        self.batches.append(batch)
        return None


def test_mixed_topics_through_the_loop() -> None:
    sink = RecordingSink()
    harness = SinkHarness(sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED)
    for name in ("pg-schema-products-c", "pg-schema-products-d", "pg-schema-products-tombstone"):
        rec = golden(name)
        harness.produce(rec.topic, [rec.value], key=rec.key)
    hb = golden("pg-schema-heartbeat")
    harness.produce(hb.topic, [hb.value], key=hb.key)
    harness.produce("user-events", [make_user_activity("view"), b"{broken", None])
    harness.run_until_idle()
    harness.shutdown()
    records = [r for b in sink.batches for r in b]
    kinds = [(type(r).__name__, r.values[2] if isinstance(r, ChangeRow) else "") for r in records]
    assert kinds == [
        ("ChangeRow", "change"),
        ("ChangeRow", "change"),
        ("ChangeRow", "tombstone"),
        ("UserEventRow", ""),
    ]
    assert isinstance(records[3], UserEventRow)
    assert [d.code for d in harness.dead_letters] == ["not_json", "not_object"]
    dead = [d for b in sink.batches for d in b.dead_letters]
    assert [(d.topic, d.offset) for d in dead] == [("user-events", 1), ("user-events", 2)]
    assert harness.committed[TopicPartition("user-events", 0)] == 3
    assert harness.committed[TopicPartition(hb.topic, 0)] == 1
    assert (
        harness.metric(
            "cdc_messages_total", service="test-service", topic=hb.topic, outcome="skipped"
        )
        == 1
    )


def test_settings_defaults_and_topic_lists(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "b:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@h/db")
    settings = Settings.load()
    assert settings.kafka_topics == (r"^dbserver1\.public\..*", "user-events")
    assert settings.user_events_topics == ("user-events",)
    assert "secret" not in repr(settings)
    monkeypatch.setenv("KAFKA_TOPICS", "a, ^b.*")
    monkeypatch.setenv("USER_EVENTS_TOPICS", "clicks,views")
    settings = Settings.load()
    assert settings.kafka_topics == ("a", "^b.*")
    assert settings.user_events_topics == ("clicks", "views")
