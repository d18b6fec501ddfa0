"""Keeps per-customer, per-product and per-user statistics current in PostgreSQL, exactly once."""
