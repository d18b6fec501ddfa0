"""What the operator commands know about the installed services: their descriptors.

Each service publishes a ``consumer_runtime.ServiceDescriptor`` under the ``cdc.services``
entry-point group: its commit strategy, default topics, sink and why re-reading records is
harmless for it, and references to its commands, its dead-letter store and its verifier. The CLI
reads them at run time and never imports a service by name (libraries never import services),
so a checkout with only some services installed knows only those, and a new service is known
as soon as it is installed.
"""

from __future__ import annotations

import functools
from typing import Any

from consumer_runtime import ServiceDescriptor, services

ServiceInfo = ServiceDescriptor[Any, Any]


@functools.cache
def catalogue() -> dict[str, ServiceInfo]:
    """The installed services by name (loaded once per process)."""
    return services()


def service(name: str) -> ServiceInfo:
    known = catalogue()
    try:
        return known[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r} (known: {', '.join(known)})") from None
