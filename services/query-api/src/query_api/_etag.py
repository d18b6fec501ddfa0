"""Strong entity tags of JSON representations (pure).

The tag is a hash of the exact bytes sent, so two responses carry the same tag exactly when
their bodies are byte-identical (RFC 9110's strong validator), and a client's ``If-None-Match``
matches as long as the data it has is still current.
"""

from __future__ import annotations

import hashlib

__all__ = ["etag_of", "matches"]


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: ``*``, or any listed tag equal to ``etag`` (the weak comparison, as the
    header prescribes: a ``W/`` prefix is ignored)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == etag for t in if_none_match.split(","))
