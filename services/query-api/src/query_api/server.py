"""Serving the app: settings read once from the environment, logging configured, one uvicorn
server (one worker: scale by replicas) on ``API_HOST:API_PORT``. A bad setting is printed on
stderr with exit 2, as the consumers do."""

from __future__ import annotations

import gc
import sys

import uvicorn
from consumer_runtime import configure_logging
from pydantic import ValidationError

from query_api.app import create_app
from query_api.settings import Settings

__all__ = ["main"]


def main() -> int:
    try:
        settings = Settings()
        configure_logging(settings.log_level, settings.log_format, service="query-api")
        app = create_app(settings)
    except (ValidationError, ValueError) as exc:
        print(f"query-api: invalid settings: {exc}", file=sys.stderr)
        return 2
    # Everything imported and built so far (botocore's models, pyiceberg, SQLAlchemy: about a
    # million objects) lives as long as the process: out of the collector's sight, a full
    # collection walks only what requests allocate, instead of pausing every request in flight
    # while it walks the whole heap again.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,  # the metrics count every request; a log line each is noise
        proxy_headers=True,
    )
    return 0
