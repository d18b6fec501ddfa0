"""``python -m cdc_operator [--namespace NS]``: run the CdcConsumer operator."""

from __future__ import annotations

import argparse

from cdc_operator._handlers import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="cdc_operator", description=__doc__)
    parser.add_argument("--namespace", help="watch only this namespace (default: all)")
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="kopf's liveness endpoint (default: %(default)s)",
    )
    args = parser.parse_args()
    run(args.namespace, args.liveness)


if __name__ == "__main__":
    main()
