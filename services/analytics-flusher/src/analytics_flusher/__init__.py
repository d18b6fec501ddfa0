"""Aggregates orders over event-time windows and flushes Parquet reports to an S3 data lake."""
