from __future__ import annotations

from decimal import Decimal

import pytest
from sink_kit.pgcopy import encode_row, encode_value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "\\N"),
        (True, "t"),
        (False, "f"),
        ("", ""),
        ("plain", "plain"),
        ('{"a": "x\\"y", "b": "line\\nbreak"}', '{"a": "x\\\\"y", "b": "line\\\\nbreak"}'),
        ("tab\there", "tab\\there"),
        ("new\nline", "new\\nline"),
        ("cr\rhere", "cr\\rhere"),
        ("back\\slash", "back\\\\slash"),
        ("\\N", "\\\\N"),  # the text "\N", not NULL
        ("é ü 日本", "é ü 日本"),
        (0, "0"),
        (-12, "-12"),
        (Decimal("12.50"), "12.50"),
        (1.5, "1.5"),
        ('{"desc","tags"}', '{"desc","tags"}'),
    ],
)
def test_a_value_in_copy_text_format(value: object, text: str) -> None:
    """PostgreSQL's COPY text format: ``\\N`` is NULL; backslash, tab, newline and carriage
    return are backslash-escaped; everything else is as ``str`` writes it."""
    assert encode_value(value) == text


def test_encode_row_is_a_tab_separated_line() -> None:
    assert encode_row(["a\tb", None, 3, True]) == "a\\tb\t\\N\t3\tt\n"


def test_copy_rows_is_the_one_encoder() -> None:
    from sink_kit.pgcopy import copy_text_rows
    from sink_kit.postgres import copy_rows

    assert copy_rows is copy_text_rows
