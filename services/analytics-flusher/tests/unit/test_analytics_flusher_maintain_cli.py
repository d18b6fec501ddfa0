"""The durations ``cdc lake maintain --older-than`` accepts."""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest
from analytics_flusher._maintain_cli import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("0s", timedelta(0)),
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        (" 1W ", timedelta(weeks=1)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "1x", "h1", "-1h", "1.5h", "1h 30m"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_the_command_defaults_are_the_stores() -> None:
    """The command spells its defaults out (so ``cdc --help`` does not import pyiceberg)."""
    from analytics_flusher._maintain_cli import maintain
    from analytics_flusher.store._iceberg import (
        DEFAULT_MIN_INPUT_FILES,
        DEFAULT_OLDER_THAN,
        DEFAULT_RETAIN_LAST,
        DEFAULT_TARGET_FILE_BYTES,
    )

    defaults = {name: p.default for name, p in inspect.signature(maintain).parameters.items()}
    assert parse_duration(defaults["older_than"]) == DEFAULT_OLDER_THAN
    assert defaults["retain_last"] == DEFAULT_RETAIN_LAST
    assert defaults["target_file_mb"] * 1024 * 1024 == DEFAULT_TARGET_FILE_BYTES
    assert defaults["min_files"] == DEFAULT_MIN_INPUT_FILES
