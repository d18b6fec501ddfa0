"""Appends every CDC change and user event to an immutable PostgreSQL event store, exactly once."""
