"""The indexer as a child process through a DynamoDB outage (the emulator paused ~10 s) and a
SIGKILL: retried, nothing lost, the index ends equal to the source table, postings included.

Requests that time out during the pause land when the emulator resumes, and the restarted
member's first batches fold differently from the killed member's: the interleavings that
used to leave orphan or missing postings (``test_search_indexer_recovery`` plays each one
deterministically)."""

from __future__ import annotations

from typing import Any

from devstack import AwsEmulator, ShopSimulator, wait_until
from search_indexer import ProductSearch

from .test_search_indexer_pipeline import reference_search


def test_outage_and_crash_lose_nothing(
    index_table: Any,
    products_topic: str,
    shop_conn: Any,
    shop_simulator: ShopSimulator,
    start_indexer: Any,
    aws_emulator: AwsEmulator,
    unique_id: str,
    helpers: Any,
) -> None:
    group = f"si-outage-{unique_id}"
    indexer = start_indexer(group, index_table.name)
    shop_simulator.rate = 150
    shop_simulator.run(duration=3)
    wait_until(
        lambda: indexer.metric("cdc_messages_total", outcome="processed") > 0,
        60,
        message="indexing",
    )
    # The process serves the sink's own figures too: its counters and its DynamoDB calls. A
    # batch counts as processed when it is handed to the sink, which writes it in the
    # background (WRITE_BEHIND): its own counters follow when the write returned.
    wait_until(
        lambda: indexer.metric("search_index_products_total") > 0,
        60,
        message="the sink's products counter",
    )
    assert (
        indexer.metric(
            "cdc_aws_call_duration_seconds_count", service="search-indexer", aws_service="dynamodb"
        )
        > 0
    )

    aws_emulator.process.pause()
    try:
        shop_simulator.run(duration=10)  # changes keep arriving while DynamoDB is unreachable
    finally:
        aws_emulator.process.resume()
    shop_simulator.run(duration=2)
    wait_until(lambda: indexer.metric("cdc_retries_total") > 0, 60, message="a retry")
    assert indexer.process.running, indexer.process.log_tail()

    # A crash with batches in flight: the restarted member re-reads from the last commit.
    indexer.process.kill()
    shop_simulator.run(duration=2)
    start_indexer(group, index_table.name)
    helpers.wait_for_truth(index_table, shop_conn)  # exact: no orphan, no missing posting
    docs, _ = helpers.expected_index(shop_conn)
    search = ProductSearch(index_table)
    for query in ("classic", "espresso cup", "durable steel", "ceramic", "gift kitchen"):
        got = [h.id for h in search.search(query, limit=1000)]
        assert got == reference_search(docs, query, limit=1000), query
