"""Generate one straight-line Python function per compiled ``struct`` schema: the row fast path.

Below ``_schema``: a Debezium row has a dozen to a few hundred columns and the parser decodes
two rows per event, so a generic loop over column steps (unpack the step, test the type
against a set, test for the TOAST placeholder, call the decoder) costs more than the values'
own decoding. The function generated here does per column only what its schema needs: an
identity column (``int32``, ``string``, ``boolean`` without a logical type) is one type test,
an epoch timestamp or a date is decoded inline, other logical types call their decoder.

It is optimistic: on anything unusual (a value of the wrong type, a null in a required field,
a placeholder, an exception from a decoder) it returns None and the caller redoes the row with
the checked, column-by-column decoder, which raises the precise error or marks the
placeholders. So the fast path only has to agree with the checked one on rows it accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, time, timedelta
from typing import Any, Final

from cdc_events import _logical as lg
from cdc_events._column_types import Decoder

FastRow = Callable[[dict[str, Any]], dict[str, Any] | None]
# (name, optional, accepted types or None for any, decoder or None, may hold the placeholder)
Step = tuple[str, bool, frozenset[type] | None, Decoder | None, bool]

# Decoders written inline as an expression of the (type-checked, non-null) value ``v``; each
# equals its decoder on every int it does not raise for, and a raise sends the row to the
# checked path, which raises the decoder's own error.
_INLINE: Final[Mapping[Decoder, str]] = {
    lg.decode_timestamp_ms: "EPOCH + timedelta(0, 0, v * 1000)",
    lg.decode_timestamp_us: "EPOCH + timedelta(0, 0, v)",
    lg.decode_timestamp_ns: "EPOCH + timedelta(0, 0, v // 1000)",
    lg.decode_date: "fromordinal(EPOCH_ORDINAL + v)",
    # Out of [00:00, 24:00) the hour is negative or over 23, which time() refuses.
    lg.decode_time_ms: "time(v // 3_600_000, v // 60_000 % 60, v // 1000 % 60, v % 1000 * 1000)",
    lg.decode_time_us: (
        "time(v // 3_600_000_000, v // 60_000_000 % 60, v // 1_000_000 % 60, v % 1_000_000)"
    ),
    lg.decode_time_ns: (
        "time(v // 3_600_000_000_000, v // 60_000_000_000 % 60, v // 1_000_000_000 % 60,"
        " v // 1000 % 1_000_000)"
    ),
}
_INT_ONLY: Final = frozenset({int})
_STR_ONLY: Final = frozenset({str})
_LIST_ONLY: Final = frozenset({list})


def fast_row(steps: tuple[Step, ...]) -> FastRow:
    """The generated fast path of a row with these steps (keys must be exactly the names)."""
    namespace: dict[str, Any] = {
        "EPOCH": lg.EPOCH,
        "EPOCH_ORDINAL": lg.EPOCH_DATE.toordinal(),
        "timedelta": timedelta,
        "time": time,
        "fromordinal": date.fromordinal,
        "TEXTS": frozenset({lg.PLACEHOLDER, lg.PLACEHOLDER_B64}),
        "LIST": lg.PLACEHOLDER_LIST,
        "CODES": lg.PLACEHOLDER_CODES,
        "n": len(steps),
    }
    lines = [
        "def fast(raw):",
        "    if len(raw) != n:",
        "        return None",
        "    out = raw.copy()",
    ]
    for i, (name, optional, types, decoder, placeholder) in enumerate(steps):
        # repr() of a str is a valid literal whatever the column name holds.
        key = repr(name)
        body = _column(i, key, types, decoder, placeholder, namespace)
        lines.append(f"    v = out[{key}]")
        if optional:
            if body:
                lines.append("    if v is not None:")
                lines.extend("        " + line for line in body)
        else:
            if types is None:  # otherwise the type test turns a null away
                lines += ["    if v is None:", "        return None"]
            lines.extend("    " + line for line in body)
    lines.append("    return out")
    exec("\n".join(lines), namespace)  # noqa: S102 -- the text is built above from literals
    fast: FastRow = namespace["fast"]
    return fast


def _column(
    i: int,
    key: str,
    types: frozenset[type] | None,
    decoder: Decoder | None,
    placeholder: bool,
    namespace: dict[str, Any],
) -> list[str]:
    """Lines checking and decoding one non-null value ``v``."""
    body: list[str] = []
    if types is not None:
        if len(types) == 1:
            (only,) = types
            namespace[f"T{i}"] = only
            body += [f"if type(v) is not T{i}:", "    return None"]
        else:
            namespace[f"T{i}"] = types
            body += [f"if type(v) not in T{i}:", "    return None"]
    if placeholder:
        # Before the decoder, as in the checked path: a placeholder is never decoded.
        if types is None or str in types:
            test = "v in TEXTS" if types == _STR_ONLY else "type(v) is str and v in TEXTS"
            body += [f"if {test}:", "    return None"]
        if types is None or list in types:
            test = "v == LIST or v == CODES"
            if types != _LIST_ONLY:
                test = f"type(v) is list and ({test})"
            body += [f"if {test}:", "    return None"]
    if decoder is not None:
        inline = _INLINE.get(decoder)
        if inline is not None and types == _INT_ONLY:
            body.append(f"out[{key}] = {inline}")
        else:
            namespace[f"D{i}"] = decoder
            body.append(f"out[{key}] = D{i}(v, {key})")
    return body
