"""An example client of the query API (``services/query-api``), with httpx."""

from query_api_client.client import Problem, QueryApiClient

__all__ = ["Problem", "QueryApiClient"]
