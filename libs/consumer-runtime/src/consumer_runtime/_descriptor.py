"""What a service is, in one object: the ``ServiceDescriptor`` each service publishes.

A service package holds ``SERVICE = ServiceDescriptor(...)`` in its ``service`` module and names
it under the ``cdc.services`` entry-point group. Its ``__main__`` runs it
(``sys.exit(SERVICE.run())``); the operator CLI, the dev stack and verification find every
installed service through :func:`services`, so no library names a service and a new consumer
touches only its own folder.

The parts a process running the consumer never needs, and whose imports are heavy or belong
to development only (the verifier imports the dev stack, CLI commands import typer and rich),
are ``"module:attribute"`` references, imported only when :meth:`ServiceDescriptor.load` is
asked for them.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from consumer_runtime._errors import SettingsError
from consumer_runtime._runtime import EXIT_CONFIG, run_service
from consumer_runtime._settings import RuntimeSettings
from consumer_runtime._sink import CommitStrategy, Decoder, Sink

T = TypeVar("T")
S = TypeVar("S", bound=RuntimeSettings)

#: The entry-point group every service publishes its descriptor under (name: the service).
SERVICES_GROUP = "cdc.services"


@dataclass(frozen=True)
class ServiceDescriptor(Generic[S, T]):
    """One consumer service: how to run it, and what the tools around it need to know."""

    name: str
    #: The default ``KAFKA_TOPICS``; an entry starting with ``^`` is a pattern.
    topics: tuple[str, ...]
    strategy: CommitStrategy
    #: The settings class (a ``RuntimeSettings`` subclass), read from the environment by ``run``.
    settings: type[S]
    #: ``decoder(settings)`` builds the decoder (``Message -> record``).
    decoder: Callable[[S], Decoder[T]]
    #: ``sink(settings)`` builds the sink (its clients, engine, ...).
    sink: Callable[[S], Sink[T]]
    #: Why re-reading records (a replay, an offset reset, a redelivery) doubles nothing here.
    replay_safety: str
    #: One line: the store, and where the offsets are kept.
    sink_description: str
    #: ``"module:function"``, ``(devstack.verify.VerifyContext) -> list[Check]``: the read
    #: model compared with the dev stack's ground truth.
    verifier: str | None = None
    #: ``"module:function"``, ``(typer.Typer) -> None``: adds the service's ``cdc`` commands.
    commands: str | None = None
    #: ``"module:function"``, ``() -> typer.Typer`` with ``list``, ``show``, ``replay`` and
    #: ``discard``: for a service that keeps its dead letters in a store of its own.
    dlq_commands: str | None = None

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError(f"{self.name}: a service subscribes to at least one topic")
        for ref in (self.verifier, self.commands, self.dlq_commands):
            if ref is not None and ref.count(":") != 1:
                raise ValueError(f"{self.name}: {ref!r} is not a 'module:attribute' reference")

    # -- running -------------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> int:
        """Run the service until SIGTERM/SIGINT; returns the process exit code.

        Settings are read once, here; a bad one is reported on stderr (exit 2), as
        ``run_service`` reports it.
        """
        try:
            settings = self.settings.load()
        except SettingsError as exc:
            print(f"{self.name}: {exc}", file=sys.stderr)  # logging is not configured yet
            return EXIT_CONFIG
        return run_service(
            self.name,
            settings,
            self.decoder(settings),
            self.sink,
            strategy=self.strategy,
            install_signal_handlers=install_signal_handlers,
        )

    # -- facts for the tools -------------------------------------------------------------------

    @property
    def sink_managed(self) -> bool:
        return self.strategy is CommitStrategy.SINK_MANAGED

    def subscribes_to(self, topic: str) -> bool:
        return any(
            re.fullmatch(t[1:], topic) if t.startswith("^") else t == topic for t in self.topics
        )

    def matching(self, topics: Iterable[str]) -> list[str]:
        return sorted(t for t in topics if self.subscribes_to(t))

    # -- the lazy parts ------------------------------------------------------------------------

    @staticmethod
    def load(ref: str) -> Any:
        """Import ``"module:attribute"`` (dotted attributes allowed) and return the attribute."""
        module_name, _, attribute = ref.partition(":")
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
        return target

    def load_verifier(self) -> Any | None:
        return None if self.verifier is None else self.load(self.verifier)

    def load_commands(self) -> Any | None:
        return None if self.commands is None else self.load(self.commands)

    def load_dlq_commands(self) -> Any | None:
        return None if self.dlq_commands is None else self.load(self.dlq_commands)


def services() -> dict[str, ServiceDescriptor[Any, Any]]:
    """The installed services' descriptors (``cdc.services`` entry points), by name, sorted.

    Loading one imports the service's ``service`` module (its settings, decoder and sink
    modules), never its verifier or CLI commands.
    """
    found: dict[str, ServiceDescriptor[Any, Any]] = {}
    for entry_point in sorted(entry_points(group=SERVICES_GROUP), key=lambda e: e.name):
        descriptor = entry_point.load()
        if not isinstance(descriptor, ServiceDescriptor):
            raise TypeError(
                f"entry point {entry_point.name} = {entry_point.value} in {SERVICES_GROUP} is "
                f"a {type(descriptor).__name__}, not a ServiceDescriptor"
            )
        if descriptor.name != entry_point.name:
            raise ValueError(
                f"entry point {entry_point.name} in {SERVICES_GROUP} names the service "
                f"{descriptor.name!r}: the two must be equal (fix the package's pyproject.toml)"
            )
        found[descriptor.name] = descriptor
    return found
