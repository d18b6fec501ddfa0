from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from event_store_writer import StoredEvent, normalise_row, parse_key, rebuild_state
from read_models.events import parse_time

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _ev(
    op: str | None,
    after: dict[str, Any] | None = None,
    *,
    kind: str = "change",
    unchanged: tuple[str, ...] = (),
    before: dict[str, Any] | None = None,
    version: str | None = None,
) -> StoredEvent:
    return StoredEvent(
        "id",
        kind,
        op,
        {"id": 1},
        before,
        after,
        unchanged,
        T0,
        T0,
        1,
        1,
        None,
        False,
        "t",
        0,
        0,
        version,
    )


def test_fold_create_update_delete_recreate() -> None:
    events = [
        _ev("r", {"id": 1, "name": "a", "description": "long"}),
        _ev("u", {"id": 1, "name": "b"}, unchanged=("description",)),
    ]
    assert rebuild_state(events) == {"id": 1, "name": "b", "description": "long"}
    events += [_ev("d", before={"id": 1}), _ev(None, kind="tombstone")]
    assert rebuild_state(events) is None
    events.append(_ev("c", {"id": 1, "name": "c"}))
    assert rebuild_state(events) == {"id": 1, "name": "c"}
    events.append(_ev("t"))
    assert rebuild_state(events) is None
    assert rebuild_state([]) is None


def test_a_row_whose_newest_change_is_below_its_tables_sweep_is_gone() -> None:
    read = _ev("r", {"id": 1, "name": "a"}, version="q0011")
    update = _ev("u", {"id": 1, "name": "b"}, version="q0022")
    assert rebuild_state([read, update], sweep="q0010") == {"id": 1, "name": "b"}
    assert rebuild_state([read, update], sweep="q0030") is None
    # Read again by the sweeping snapshot (above its sweep): there.
    again = _ev("r", {"id": 1, "name": "c"}, version="q0031")
    assert rebuild_state([read, update, again], sweep="q0030") == {"id": 1, "name": "c"}
    # A tombstone (its delete's version, or none) is not the newest change.
    orphan = _ev(None, kind="tombstone")
    assert rebuild_state([read, update, again, orphan], sweep="q0030") == {"id": 1, "name": "c"}
    # A change stored before versions is below every sweep.
    old = _ev("u", {"id": 1, "name": "old"})
    assert rebuild_state([old], sweep=None) == {"id": 1, "name": "old"}
    assert rebuild_state([old], sweep="q0001") is None
    assert rebuild_state([], sweep="q0001") is None


def test_normalise_row_matches_the_parser_forms() -> None:
    row = {
        "price": Decimal("12.50"),
        "at": datetime(2024, 1, 2, 4, 4, 5, 120000, tzinfo=timezone(timedelta(hours=1))),
        "whole": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "day": date(2024, 2, 29),
        "ref": uuid.UUID(int=1),
        "n": 3,
        "s": "x",
        "none": None,
    }
    assert normalise_row(row) == {
        "price": "12.50",
        "at": "2024-01-02T03:04:05.120000Z",
        "whole": "2024-01-02T03:04:05Z",
        "day": "2024-02-29",
        "ref": "00000000-0000-0000-0000-000000000001",
        "n": 3,
        "s": "x",
        "none": None,
    }


def test_parse_key() -> None:
    assert parse_key("42", ["id"]) == {"id": 42}
    assert parse_key("abc", ["code"]) == {"code": "abc"}
    assert parse_key('{"a": 1, "b": "x"}') == {"a": 1, "b": "x"}
    with pytest.raises(ValueError, match="JSON object"):
        parse_key("42", ["a", "b"])
    with pytest.raises(ValueError, match="no stored event"):
        parse_key("42", [])


def test_parse_time() -> None:
    assert parse_time("2024-01-02T03:04:05Z") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2024-01-02T03:04:05") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2024-01-02T04:04:05+01:00") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert abs((parse_time("now") - datetime.now(UTC)).total_seconds()) < 5
