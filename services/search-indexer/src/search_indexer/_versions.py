"""The versions every write to the index is guarded by, and the sweep's comparison with them.
Pure, as ``domain``: no I/O library is imported here.

Versions. Every write to the index is guarded by ``version``, the change's place in its row's
history as ``cdc_events.source_version`` gives it: fixed-width text whose byte order is the
order of one row's changes, stored as a DynamoDB ``S`` and compared with ``<`` in condition
expressions. It comes from the source, never from Kafka, so a redelivery, a dead letter
re-produced at a new offset (``cdc dlq replay``), a Debezium re-emit and a re-created topic all
give a change the version it had. PostgreSQL's (``q``): the snapshot generation first (a
snapshot's point, or the commit key of a streamed change: a new snapshot's reads outrank
everything streamed before them), then the class (``1`` a snapshot read, ``2`` streamed), the
commit key (``source.sequence[0]``, the commit LSN of the transaction Debezium processed before
this one) and the change's LSN. The LSN alone is no order (and was rejected here before):
overlapping transactions interleave in the WAL, so a later commit can carry a smaller LSN, every
snapshot read shares the snapshot's LSN, and a transaction open across the snapshot's consistent
point changed its rows *below* that LSN although it committed after it (``cdc_events.Versions``,
held by the decoder of ``domain.make_decoder``, gives it its snapshot's point).

Sweeps. A snapshot emits no deletes: a product deleted while Debezium had lost its offsets is
never streamed. The last read of ``products`` in a snapshot carries ``sweep``
(``cdc_events.sweep_version``, ``S``): above every version of earlier generations, below every
read of that snapshot and everything streamed after it. A product stored at a version below
``S`` (``below_sweep``) was neither read by that snapshot nor changed after it, so it is gone
from the source: the sink deletes it at ``S`` after applying the batch (``_sweep``).

Items written by the release that versioned by Kafka offset hold ``version`` as a number
(``N``); a condition comparing an ``N`` attribute with an ``S`` value is false, so the sink lets
any change replace such an item once (``LEGACY_VERSION``, ``sink.IndexTable``).
"""

from __future__ import annotations

from typing import Final

from read_models.search import LEGACY_VERSION

__all__ = ["LEGACY_VERSION", "below_sweep"]

# LEGACY_VERSION (``read_models.search``, where stored items are parsed): the version of
# whatever has no source version; below every source version, so the next write replaces it.

#: The first letter of the versions a sweep may delete, by the sweep's own first letter: its
#: form, and that form before generations (``p``/``m``, class first: below every ``q``/``n``).
#: Forms of another connector (``n`` against ``q``) or the ``t`` form never compare with it.
_SWEPT_FORMS: Final = {"q": frozenset("qp"), "n": frozenset("nm")}


def below_sweep(version: str, sweep: str) -> bool:
    """A product stored at ``version`` is gone from the source after the snapshot whose last
    read of ``products`` carries ``sweep``: ``version`` is of a form that compares with it
    (its own, or the same connector's before generations) and below it as text.
    ``LEGACY_VERSION`` (an item of the release that versioned by Kafka offset) is below every
    source version, here too."""
    if version == LEGACY_VERSION:
        return True
    forms = _SWEPT_FORMS.get(sweep[:1], frozenset(sweep[:1]))
    return version[:1] in forms and version < sweep
