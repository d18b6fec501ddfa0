"""API keys (pure): parsing the key file and checking a presented key against it.

The file is mounted from a Kubernetes Secret (``API_KEYS_FILE``); ``API_KEYS`` holds the same
entries for local runs. One entry per line (or separated by commas in ``API_KEYS``), blank
lines and ``#`` comments ignored::

    <name>:<scope>:<key>              # the key itself
    <name>:<scope>:sha256:<64 hex>    # only its SHA-256 (the Secret need not hold the key)

``scope`` is ``read`` or ``admin`` (admin implies read); ``name`` identifies the client in logs
and metrics, never the key. Only SHA-256 digests are kept in memory, and a presented key is
hashed and compared with every digest with ``hmac.compare_digest`` (no early exit on the first
differing byte, and no early exit on the first matching entry), so the time taken says nothing
about how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["SCOPES", "ApiKey", "KeyRing", "hash_key", "parse_keys"]

Scope = Literal["read", "admin"]
SCOPES: Final = ("read", "admin")
_SHA256: Final = "sha256:"
# A shorter key is guessable; 16 characters of a random token are 80+ bits.
_MIN_KEY_CHARS: Final = 16


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One client's key: its name, scope and the key's SHA-256 digest."""

    name: str
    scope: Scope
    digest: bytes = b""

    def allows(self, scope: Scope) -> bool:
        return self.scope in ("admin", scope)

    def __repr__(self) -> str:  # never the digest
        return f"ApiKey(name={self.name!r}, scope={self.scope!r})"


def _entry(text: str, where: str) -> ApiKey:
    parts = text.split(":", 2)
    if len(parts) != 3 or not parts[0].strip():
        raise ValueError(f"{where}: expected <name>:<scope>:<key>")
    name, scope, secret = parts[0].strip(), parts[1].strip(), parts[2].strip()
    if scope not in SCOPES:
        raise ValueError(f"{where} ({name}): scope {scope!r} is not one of {', '.join(SCOPES)}")
    if secret.startswith(_SHA256):
        hexdigest = secret.removeprefix(_SHA256).lower()
        if len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
            raise ValueError(f"{where} ({name}): sha256: takes 64 hex digits")
        digest = bytes.fromhex(hexdigest)
    else:
        if len(secret) < _MIN_KEY_CHARS:
            raise ValueError(f"{where} ({name}): a key has at least {_MIN_KEY_CHARS} characters")
        digest = hash_key(secret)
    return ApiKey(name, scope, digest)  # type: ignore[arg-type]  # checked against SCOPES


def parse_keys(text: str, source: str = "API keys") -> list[ApiKey]:
    """The entries of ``text`` (see the module docstring); ``ValueError`` names the bad entry
    (by number, never its content)."""
    keys: list[ApiKey] = []
    entries = [
        entry.strip() for line in text.splitlines() for entry in line.split("#", 1)[0].split(",")
    ]
    for number, entry in enumerate((e for e in entries if e), start=1):
        keys.append(_entry(entry, f"{source}, entry {number}"))
    names = [k.name for k in keys]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{source}: names used twice: {', '.join(duplicates)}")
    return keys


class KeyRing:
    """The keys in force; ``match`` finds the one a presented key is."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = tuple(keys)

    def __len__(self) -> int:
        return len(self.keys)

    def match(self, presented: str) -> ApiKey | None:
        digest = hash_key(presented)
        found: ApiKey | None = None
        for key in self.keys:  # every entry compared, whichever matches
            if hmac.compare_digest(digest, key.digest) and found is None:
                found = key
        return found
