"""Where the ``cdc dlq`` commands of the event store (``_dlq_cli``) find what they act on.

The store at ``--database-url`` / ``DATABASE_URL``, else in the dev stack's
``.devstack/latest/stack.json`` (when there is one in the working directory; read by the CLI's
own ``cdc_cli.load_stack``); the broker ``replay --execute`` produces to at ``--bootstrap`` /
``KAFKA_BOOTSTRAP_SERVERS`` (same fallback), through the consumer runtime's publisher (SASL/SSL
from the runtime's ``KAFKA_*`` variables); and who changes a row's status. What cannot be found
ends the command with exit 2 and the reason (``fail``).
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer
from cdc_cli import DEFAULT_STACK, CliError, StackFile, load_stack

if TYPE_CHECKING:
    from consumer_runtime import Publisher

    from event_store_writer.store import StoreReader

STACK_FILE = DEFAULT_STACK
STACK_SERVICE = "event-store-writer"
# Publisher client id prefix (``<service>-publisher``) as seen by the broker.
PUBLISHER_NAME = "cdc-dlq"
# A record's delivery report must be final before the publisher stops waiting for it (10 s):
# a record that times out is then reported failed, never acknowledged after we gave up on it.
_MESSAGE_TIMEOUT_MS = 8000


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def dev_stack() -> StackFile | None:
    """The dev stack's description here, if there is one (read by the CLI's own loader)."""
    try:
        return load_stack(None)[0]
    except CliError as exc:
        fail(exc.message)


def store_url(given: str | None) -> str:
    if given:
        return given
    stack = dev_stack()
    url = stack.databases.get(STACK_SERVICE) if stack is not None else None
    if not url:
        why_not = f"there is no {STACK_FILE} here" if stack is None else f"{STACK_FILE} has none"
        fail(
            "no event store given: pass --database-url or set DATABASE_URL "
            f"(or run `cdc dev up` here, which writes {STACK_FILE}; {why_not})"
        )
    typer.echo(f"using the dev stack's event store ({STACK_FILE})", err=True)
    return url


def broker(given: str | None) -> str:
    if given:
        return given
    stack = dev_stack()
    if stack is None:
        fail(
            "no Kafka broker given for --execute: pass --bootstrap or set "
            f"KAFKA_BOOTSTRAP_SERVERS (or run `cdc dev up` here; there is no {STACK_FILE} here)"
        )
    typer.echo(f"using the dev stack's broker {stack.bootstrap} ({STACK_FILE})", err=True)
    return stack.bootstrap


@contextmanager
def open_store(database_url: str | None) -> Iterator[StoreReader]:
    """The store reader; its errors end the command with exit 2 and the reason."""
    from read_models import ReadModelError

    from event_store_writer.errors import StoreQueryError
    from event_store_writer.store import StoreReader

    try:
        reader = StoreReader(store_url(database_url))
    except (StoreQueryError, ReadModelError) as exc:
        fail(str(exc))
    try:
        yield reader
    except (StoreQueryError, ReadModelError) as exc:
        fail(str(exc))
    finally:
        reader.close()


def open_publisher(bootstrap: str) -> Publisher:
    from consumer_runtime import ConsumerRuntimeError, RuntimeSettings, create_publisher

    try:
        # The runtime's connection settings (KAFKA_SECURITY_PROTOCOL, SASL, ...) from the
        # environment; the publisher needs no topic subscription, ``kafka_topics`` is a filler.
        settings = RuntimeSettings.load(
            kafka_bootstrap_servers=bootstrap, kafka_topics=("cdc-dlq-replay",)
        )
        extra = {"message.timeout.ms": _MESSAGE_TIMEOUT_MS, **settings.kafka_producer_extra}
        settings = settings.model_copy(update={"kafka_producer_extra": extra})
        return create_publisher(settings, PUBLISHER_NAME)
    except ConsumerRuntimeError as exc:
        fail(f"Kafka settings: {exc}")


def operator() -> str:
    """Who changes a row's status (``status_changed_by``): user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
