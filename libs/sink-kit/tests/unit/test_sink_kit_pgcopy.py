from __future__ import annotations

from decimal import Decimal

import pytest
from sink_kit.pgcopy import encode_value
from sink_kit.postgres import _text


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        "",
        "plain",
        '{"a": "x\\"y", "b": "line\\nbreak"}',
        "tab\there",
        "new\nline",
        "cr\rhere",
        "back\\slash",
        "\\N",
        "é ü 日本",
        0,
        -12,
        Decimal("12.50"),
        1.5,
        '{"desc","tags"}',
    ],
)
def test_encoding_equals_copy_rows(value: object) -> None:
    assert encode_value(value) == _text(value)


def test_encode_row_is_a_tab_separated_line() -> None:
    from sink_kit.pgcopy import encode_row

    assert encode_row(["a\tb", None, 3, True]) == "a\\tb\t\\N\t3\tt\n"
