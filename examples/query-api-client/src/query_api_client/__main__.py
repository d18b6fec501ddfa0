"""``python -m query_api_client WORDS...``: print every product matching the words, and the
statistics of the first, from the API at ``QUERY_API_URL`` with ``QUERY_API_KEY``."""

import os
import sys

from query_api_client.client import Problem, QueryApiClient


def main(argv: list[str]) -> int:
    url = os.environ.get("QUERY_API_URL", "http://127.0.0.1:8080")
    key = os.environ.get("QUERY_API_KEY", "")
    with QueryApiClient(url, key) as api:
        try:
            hits = list(api.search(" ".join(argv), page_size=50))
            for hit in hits:
                print(f"{hit['id']:>8}  {hit['price']:>10}  {hit['name']}")
            if hits:
                print(api.statistics("products", hits[0]["id"]))
        except Problem as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


sys.exit(main(sys.argv[1:]))
