"""The AWS emulator's server process: moto's own server, one request at a time.

moto's backends are not safe under concurrent requests: two conditional ``PutItem`` calls on
one item can both pass their condition, which real DynamoDB never allows. The services' version
guards are exactly what the tests check, so the emulator must be atomic per request: the WSGI
application runs under one lock (connections are still accepted concurrently and kept alive).
``_moto_patches`` replaces moto's whole-table rollback copy in ``TransactWriteItems`` (seconds per
transaction) by a copy of the items the transaction names.

Run: ``python -m devstack.moto_server -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

from devstack import _moto_patches


class _Serialised:
    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            # Materialise the body inside the lock: the response is computed lazily otherwise.
            return list(self._app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    _moto_patches.apply()
    # The tables live in this process as millions of small objects. With the default
    # thresholds a full collection walked all of them every few hundred writes (18 % of the
    # time of a run of conditional writes on a 12,000-item table); young generations are still
    # collected as usual, the full one a hundred times less often.
    gc.set_threshold(700, 10, 1000)
    # No access-log line per request (werkzeug's logger at INFO): at thousands of requests a
    # second the lines were a twentieth of the emulator's time and said nothing its errors
    # (still logged) do not.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host, args.port, _Serialised(app), threaded=True, request_handler=MotoRequestHandler
    )


if __name__ == "__main__":
    main()
