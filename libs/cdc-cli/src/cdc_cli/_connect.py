"""Where the operator commands connect: Kafka bootstrap, sink databases, the stack description.

Precedence: ``--bootstrap`` (or ``KAFKA_BOOTSTRAP_SERVERS``), then the stack description
``.devstack/latest/stack.json`` that ``make up`` writes (``--stack PATH`` to read another one).
Without either, the commands stop with an error that says what to pass. SASL/SSL settings come
from the same environment variables the services read (``KAFKA_SECURITY_PROTOCOL``,
``KAFKA_SASL_MECHANISM``, ...; see the consumer runtime's README).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
import typer
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:  # the Kafka client is imported only when a command runs
    from consumer_runtime import KafkaAdmin

from cdc_cli._options import DEFAULT_STACK

START_HINT = "start the stack with `make up` or pass --bootstrap"

# Exit codes: 1 = the operation failed or was refused, 2 = bad usage (typer's own code).
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure the user can act on; the message says what to do."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class StackFile(BaseModel):
    """The part of ``stack.json`` these commands read (the file has more)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    bootstrap: str
    # service name -> SQLAlchemy URL of its own database (sink-managed services)
    databases: dict[str, str] = {}
    # service name -> consumer group id (the stack may suffix the default `<service>-group`)
    groups: dict[str, str] = {}
    # service name -> the environment the stack started it with (``cdc dlq``: its DLQ_TOPIC)
    service_env: dict[str, dict[str, str]] = {}


def load_stack(path: Path | None) -> tuple[StackFile | None, Path]:
    """The stack description at ``path`` (required to exist) or at the default (optional)."""
    explicit = path is not None
    path = path if path is not None else DEFAULT_STACK
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise CliError(
                f"no stack description at {path}: start the stack with `make up` "
                "(it writes .devstack/latest/stack.json) or pass --bootstrap",
                EXIT_USAGE,
            ) from None
        return None, path
    except OSError as exc:
        raise CliError(f"cannot read the stack description {path}: {exc}", EXIT_USAGE) from exc
    try:
        return StackFile.model_validate(orjson.loads(raw)), path
    except (orjson.JSONDecodeError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CliError(
            f"{path} is not a valid stack description ({first}); pass --stack or --bootstrap",
            EXIT_USAGE,
        ) from exc


@dataclass(frozen=True)
class Connection:
    """Resolved connection settings of one command."""

    bootstrap: str
    source: str  # where the bootstrap came from, for error messages
    timeout_s: float
    stack: StackFile | None = None
    kafka_config: dict[str, Any] = field(default_factory=dict)

    def group_of(self, service: str) -> str:
        """The consumer group of a service: the stack's, else ``<service>-group``."""
        if self.stack is not None and service in self.stack.groups:
            return self.stack.groups[service]
        return f"{service}-group"

    def service_of(self, group: str) -> str | None:
        """The service a group belongs to, by the stack's groups or the ``<service>-group`` rule."""
        from cdc_cli._catalogue import catalogue

        if self.stack is not None:
            for service, g in self.stack.groups.items():
                if g == group:
                    return service
        for name in catalogue():
            if group == f"{name}-group":
                return name
        return None

    def stack_database(self, group: str) -> str | None:
        """The database the stack lists for the service of ``group``, if any."""
        if self.stack is None:
            return None
        service = self.service_of(group)
        return self.stack.databases.get(service) if service else None

    @contextmanager
    def admin(self) -> Iterator[KafkaAdmin]:
        """A connected admin client (reachability checked first); errors become ``CliError``."""
        from consumer_runtime import KafkaAdmin, KafkaClientError, KafkaUnreachableError

        try:
            admin = KafkaAdmin(self.kafka_config, timeout_s=self.timeout_s)
        except KafkaClientError as exc:
            raise CliError(f"{exc} (check --bootstrap and the KAFKA_* variables)") from exc
        try:
            try:
                admin.topics()
            except KafkaUnreachableError:
                raise CliError(
                    f"cannot reach Kafka at {self.bootstrap} ({self.source}): {START_HINT}"
                ) from None
            yield admin
        except KafkaUnreachableError as exc:
            raise CliError(f"{exc}: {START_HINT}") from exc
        except KafkaClientError as exc:
            raise CliError(str(exc)) from exc
        finally:
            admin.close()


def connect(bootstrap: str | None, stack_path: Path | None, timeout_s: float) -> Connection:
    """Resolve the bootstrap servers and the stack description of one command."""
    stack, path = load_stack(stack_path)
    if bootstrap:
        servers, source = bootstrap.strip(), "--bootstrap / KAFKA_BOOTSTRAP_SERVERS"
    elif stack is not None:
        servers, source = stack.bootstrap, f"from {path}"
    else:
        raise CliError(
            "no Kafka to talk to: pass --bootstrap HOST:PORT or set KAFKA_BOOTSTRAP_SERVERS, "
            f"or start the stack with `make up` (it writes {DEFAULT_STACK})",
            EXIT_USAGE,
        )
    return Connection(servers, source, timeout_s, stack, kafka_config(servers))


def kafka_config(bootstrap: str) -> dict[str, Any]:
    """Connection and authentication settings from the services' own variables."""
    from consumer_runtime import RuntimeSettings, SettingsError

    try:
        # KAFKA_TOPICS is required by the services' settings, not used here.
        settings = RuntimeSettings.load(kafka_bootstrap_servers=bootstrap, kafka_topics=("-",))
    except SettingsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return settings.common_kafka_config()


def parse_group_urls(values: Sequence[str]) -> dict[str, str]:
    """``GROUP=URL`` options into a mapping (the URL may itself contain ``=``)."""
    out: dict[str, str] = {}
    for value in values:
        group, sep, url = value.partition("=")
        if not sep or not group.strip() or not url.strip():
            raise CliError(
                f"--database-url expects GROUP=URL, got {value!r} "
                "(e.g. event-store-writer-group=postgresql://user@host/event_store)",
                EXIT_USAGE,
            )
        out[group.strip()] = url.strip()
    return out


def redact(url: str) -> str:
    """A database URL without its password, for output."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


# -- output ----------------------------------------------------------------------------------


def stdout() -> Console:
    return Console(highlight=False)


def fail(error: CliError) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(error.message)}")
    raise typer.Exit(error.code)


def warn(message: str) -> None:
    Console(stderr=True, highlight=False).print(f"[yellow]warning:[/] {escape(message)}")


def print_json(data: Mapping[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")
