"""The query API's pure pieces: cursors, the key file, problems and entity tags."""

from __future__ import annotations

import hashlib

import pytest
from query_api._cursor import MAX_OFFSET, InvalidCursor, decode_cursor, encode_cursor
from query_api._etag import etag_of, matches
from query_api._keys import KeyRing, parse_keys
from query_api._problems import problem

KEY = "k" * 24


@pytest.mark.unit
def test_a_cursor_decodes_to_its_offset_for_the_same_query_only() -> None:
    params = {"q": "cup", "min": None, "kind": "search"}
    cursor = encode_cursor(40, params)
    assert decode_cursor(cursor, {"kind": "search", "q": "cup"}) == 40  # order, None ignored
    assert decode_cursor(None, params) == 0
    with pytest.raises(InvalidCursor, match="another query"):
        decode_cursor(cursor, {"q": "mug", "kind": "search"})
    for bad in ("%%%", "bm90IGpzb24", encode_cursor(MAX_OFFSET + 1, params)):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad, params)


@pytest.mark.unit
def test_the_key_file_keeps_only_digests_and_admin_implies_read() -> None:
    digest = hashlib.sha256(b"another-key-of-24-chars!").hexdigest()
    text = f"""
    # dashboard, read only
    dashboard:read:{KEY}
    ops:admin:sha256:{digest}
    """
    keys = parse_keys(text)
    assert [(k.name, k.scope) for k in keys] == [("dashboard", "read"), ("ops", "admin")]
    assert KEY not in repr(keys)
    ring = KeyRing(keys)
    dashboard, ops = ring.match(KEY), ring.match("another-key-of-24-chars!")
    assert dashboard is not None and dashboard.name == "dashboard"
    assert ops is not None and ops.allows("read") and ops.allows("admin")
    assert not dashboard.allows("admin")
    assert ring.match("k" * 23) is None
    assert [k.name for k in parse_keys(f"a:read:{KEY},b:admin:{KEY}x")] == ["a", "b"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nameonly", "expected <name>:<scope>:<key>"),
        (f"a:write:{KEY}", "scope 'write'"),
        ("a:read:short", "at least 16"),
        ("a:read:sha256:abc", "64 hex"),
        (f"a:read:{KEY}\na:admin:{KEY}", "names used twice: a"),
    ],
)
def test_a_bad_entry_is_refused_by_line_without_its_key(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_keys(text, "keys")
    assert KEY not in str(caught.value)


@pytest.mark.unit
def test_problems_carry_the_rfc_9457_members() -> None:
    ours = problem(404, "no statistics for customer 7", "/v1/stats/customers/7", slug="not-found")
    assert ours == {
        "type": "/problems/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "no statistics for customer 7",
        "instance": "/v1/stats/customers/7",
    }
    plain = problem(405, "Method Not Allowed", "/livez", errors=[])
    assert plain["type"] == "about:blank" and plain["title"] == "Method Not Allowed"
    assert plain["errors"] == []


@pytest.mark.unit
def test_an_etag_is_strong_and_if_none_match_finds_it_in_a_list() -> None:
    tag = etag_of(b'{"a":1}')
    assert tag.startswith('"') and not tag.startswith("W/")
    assert tag == etag_of(b'{"a":1}') != etag_of(b'{"a":2}')
    assert matches(f'"x", {tag}', tag) and matches(f"W/{tag}", tag) and matches("*", tag)
    assert not matches(None, tag) and not matches('"x"', tag)
