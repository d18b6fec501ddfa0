"""The event-store writer's exception root (third-party errors are wrapped at the boundary)."""

from __future__ import annotations


class EventStoreError(Exception):
    """Root of the errors the event-store writer raises itself."""


class StoreQueryError(EventStoreError):
    """A read of the store (CLI) failed: the message says what to check."""
