"""``cdc dlq list|show|replay|discard --service S``: every service's dead letters.

The consumer runtime sends every dead letter of service S to its DLQ topic (``<S>.dlq``, key
and value unchanged, provenance in headers), so these commands work the same way for every
service on that topic (``_dlq_topic``), with the operator's decisions kept in a compacted status
topic beside it (``<S>.dlq.status``, see ``_dlq_status``). Ids are ``<dlq partition>:<dlq
offset>``.

A service that keeps its dead letters in a store of its own names its own ``dlq`` commands in
its descriptor (``dlq_commands``: a function returning a ``typer.Typer`` with ``list``,
``show``, ``replay`` and ``discard``); ``cdc dlq <command>
--service S`` then runs S's command instead, ``--service`` taken out of its arguments. The event
store does so (its ``dead_letter_queue`` table, numeric ids), and it is the default service, so
``cdc dlq list`` is the event store's table as before. The CLI never imports a service.
"""

from __future__ import annotations

import functools
import getpass
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from cdc_cli._options import Bootstrap, Json, Stack, Timeout

if TYPE_CHECKING:
    from pathlib import Path

    from consumer_runtime import Publisher

    from cdc_cli._dlq_status import Selection
    from cdc_cli._dlq_topic import TopicDlq

DEFAULT_SERVICE = "event-store-writer"
# Publisher client id prefix (``<name>-publisher``) as seen by the broker.
PUBLISHER_NAME = "cdc-dlq"
# A record's delivery report must be final before the publisher stops waiting for it (10 s):
# a record that times out is then reported failed, never acknowledged after we gave up on it.
_MESSAGE_TIMEOUT_MS = 8000
_SHOW_BYTES = 4096


# -- routing to a service's own store --------------------------------------------------------


def take_service(args: list[str]) -> tuple[str | None, list[str]]:
    """The ``--service`` of a command's arguments (the default if absent) and the arguments
    without it; (None, args) when it is given without a value (the command reports that)."""
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--service":
            if index + 1 >= len(args):
                return None, args
            return args[index + 1], args[:index] + args[index + 2 :]
        if arg.startswith("--service="):
            return arg.split("=", 1)[1], args[:index] + args[index + 1 :]
    return DEFAULT_SERVICE, args


@functools.cache
def store_commands(service: str) -> TyperGroup | None:
    """The ``dlq`` commands a service's descriptor names for its own store, if any."""
    from cdc_cli._catalogue import catalogue

    descriptor = catalogue().get(service)
    factory = None if descriptor is None else descriptor.load_dlq_commands()
    if factory is None:
        return None
    command = typer.main.get_command(factory())
    return command if isinstance(command, TyperGroup) else None


class ServiceRoutedGroup(TyperGroup):
    """Runs ``cdc dlq <command>`` on the service's own store when it registered one."""

    # ``Any``: typer's context and command classes live in its private ``typer._click``.
    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is None or command is None:
            return name, command, rest
        service, remaining = take_service(rest)
        backend = None if service is None else store_commands(service)
        routed = None if backend is None else backend.get_command(ctx, name)
        if routed is not None:
            return name, routed, remaining
        return name, command, rest


dlq_app = typer.Typer(
    cls=ServiceRoutedGroup,
    no_args_is_help=True,
    help=(
        "Dead letters of a service: list, show, replay, discard (--service S, default "
        f"{DEFAULT_SERVICE}).\n\n"
        "For a service whose dead letters are only in its DLQ topic (<S>.dlq), ids are "
        "<partition>:<offset> of that topic and the status is kept in <S>.dlq.status. "
        f"{DEFAULT_SERVICE} keeps them in its dead_letter_queue table (numeric ids, options "
        f"of its own: `cdc dlq list --help`); `cdc dlq list --service S --help` shows S's. "
        "replay and discard are dry runs without --execute."
    ),
)

Service = Annotated[
    str,
    typer.Option(
        "--service",
        help="the service whose dead letters these are (stats-aggregator, search-indexer, ...)",
    ),
]
DlqTopic = Annotated[
    str | None,
    typer.Option(
        "--dlq-topic",
        help="the service's DLQ topic (default: the DLQ_TOPIC the stack description started "
        "it with, else <service>.dlq, as the runtime names it)",
        show_default=False,
    ),
]
_TOPIC = typer.Option("--topic", help="only dead letters of this original topic")
_CODE = typer.Option("--code", help="only dead letters with this error code (e.g. not_json)")
_EXECUTE = typer.Option("--execute", help="do it (without: a dry run that changes nothing)")
_ALL = typer.Option("--all", help="every matching dead letter (narrowed by --topic / --code)")
_IDS = typer.Argument(
    show_default=False, metavar="ID", help="dead letter ids, <partition>:<offset>"
)


# -- connection ------------------------------------------------------------------------------


def _operator() -> str:
    """Who changes a status: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _publisher(bootstrap: str) -> Publisher:
    from consumer_runtime import RuntimeSettings, create_publisher

    # The runtime's connection settings (KAFKA_SECURITY_PROTOCOL, SASL, ...) from the
    # environment; the publisher subscribes to nothing, ``kafka_topics`` is a filler.
    settings = RuntimeSettings.load(kafka_bootstrap_servers=bootstrap, kafka_topics=("-",))
    extra = {"message.timeout.ms": _MESSAGE_TIMEOUT_MS, **settings.kafka_producer_extra}
    settings = settings.model_copy(update={"kafka_producer_extra": extra})
    return create_publisher(settings, PUBLISHER_NAME)


def dlq_topic_of(service: str, env: dict[str, str]) -> str:
    """The service's DLQ topic: its ``DLQ_TOPIC`` (from the stack's environment of it), else
    the runtime's default name (``RuntimeSettings.dead_letter_topic``)."""
    from consumer_runtime import RuntimeSettings

    configured = env.get("DLQ_TOPIC") or None
    # Only the service's own DLQ_TOPIC counts: one in this shell's environment belongs to
    # whichever service it was set for, so it is overridden here.
    settings = RuntimeSettings.model_construct(dlq_topic=configured)
    return settings.dead_letter_topic(service)


@contextmanager
def open_dlq(
    service: str,
    dlq_topic: str | None,
    bootstrap: str | None,
    stack: Path | None,
    timeout: float,
) -> Iterator[TopicDlq]:
    """The service's DLQ topic on the cluster; errors end the command with the reason."""
    from consumer_runtime import (
        ConsumerRuntimeError,
        KafkaAdmin,
        KafkaClientError,
        KafkaUnreachableError,
    )

    from cdc_cli._catalogue import catalogue
    from cdc_cli._connect import EXIT_USAGE, START_HINT, CliError, connect, fail
    from cdc_cli._dlq_topic import TopicDlq

    try:
        known = catalogue()
        if service not in known and dlq_topic is None:
            raise CliError(
                f"unknown service {service!r} (known: {', '.join(known)}); for another "
                "one, pass its DLQ topic with --dlq-topic",
                EXIT_USAGE,
            )
        conn = connect(bootstrap, stack, timeout)
        env = conn.stack.service_env.get(service, {}) if conn.stack is not None else {}
        topic = dlq_topic or dlq_topic_of(service, env)
        try:
            admin = KafkaAdmin(conn.kafka_config, timeout_s=timeout)
        except KafkaClientError as exc:
            raise CliError(f"{exc} (check --bootstrap and the KAFKA_* variables)") from exc
        dlq = TopicDlq(admin, topic, lambda: _publisher(conn.bootstrap), _operator())
        try:
            try:
                admin.topics()
            except KafkaUnreachableError:
                raise CliError(
                    f"cannot reach Kafka at {conn.bootstrap} ({conn.source}): {START_HINT}",
                    EXIT_USAGE,
                ) from None
            yield dlq
        except KafkaUnreachableError as exc:
            raise CliError(f"{exc}: {START_HINT}", EXIT_USAGE) from exc
        except ConsumerRuntimeError as exc:
            raise CliError(str(exc)) from exc
        finally:
            dlq.close()
            admin.close()
    except CliError as exc:
        fail(exc)


# -- options ---------------------------------------------------------------------------------


def _selection(
    ids: list[str] | None, all_rows: bool, topic: str | None, code: str | None, verb: str
) -> Selection:
    from cdc_cli._dlq_records import DlqId
    from cdc_cli._dlq_status import Selection
    from cdc_cli.dlq_view import require_selection

    require_selection(
        bool(ids),
        all_rows,
        verb,
        what="dead letter",
        listing="cdc dlq list --service S",
        param_hint="ID",
    )
    try:
        parsed = tuple(dict.fromkeys(DlqId.parse(i) for i in ids or ()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="ID") from None
    return Selection(ids=parsed, topic=topic, code=code)


# -- commands --------------------------------------------------------------------------------


@dlq_app.command("list")
def list_command(
    service: Service = DEFAULT_SERVICE,
    status: Annotated[
        str, typer.Option(help="new, replaying, replayed, discarded or all", show_default=True)
    ] = "all",
    topic: Annotated[str | None, _TOPIC] = None,
    code: Annotated[str | None, _CODE] = None,
    limit: Annotated[
        int, typer.Option(min=0, help="dead letters shown, newest first (0: all)")
    ] = 50,
    dlq_topic: DlqTopic = None,
    bootstrap: Bootstrap = None,
    stack: Stack = None,
    timeout: Timeout = 10.0,
    as_json: Json = False,
) -> None:
    """List a service's dead letters (newest first) and count them by error code and status."""
    from cdc_cli._dlq_render import print_list
    from cdc_cli._dlq_status import Selection, check_status

    try:
        wanted = check_status(status)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--status") from None
    with open_dlq(service, dlq_topic, bootstrap, stack, timeout) as dlq:
        records = dlq.records()
        book = dlq.load_statuses()
    selection = Selection(status=wanted, topic=topic, code=code)
    matching = [r for r in records if selection.matches(r, book)]
    print_list(service, dlq, matching, book, limit or None, as_json)


@dlq_app.command("show")
def show_command(
    dead_id: Annotated[str, typer.Argument(metavar="ID", help="<partition>:<offset>")],
    service: Service = DEFAULT_SERVICE,
    max_bytes: Annotated[
        int, typer.Option(min=0, help="bytes of the key and value shown (0: all); --json: all")
    ] = _SHOW_BYTES,
    dlq_topic: DlqTopic = None,
    bootstrap: Bootstrap = None,
    stack: Stack = None,
    timeout: Timeout = 10.0,
    as_json: Json = False,
) -> None:
    """Everything about one dead letter: error, source position, status and its history, key,
    value and headers.

    Bytes are shown as text when they are UTF-8, else as hex (and base64); --json gives them
    all in base64 (plus the text when UTF-8).
    """
    from cdc_cli._connect import CliError, fail
    from cdc_cli._dlq_records import DlqId
    from cdc_cli._dlq_render import print_show

    try:
        parsed = DlqId.parse(dead_id)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="ID") from None
    with open_dlq(service, dlq_topic, bootstrap, stack, timeout) as dlq:
        record = dlq.record(parsed)
        book = dlq.load_statuses()
    if record is None:
        fail(
            CliError(
                f"no dead letter {parsed} in {dlq.dlq_topic} (see `cdc dlq list --service "
                f"{service}`)"
            )
        )
    print_show(dlq, record, book, max_bytes or None, as_json)


@dlq_app.command("replay")
def replay_command(
    ids: Annotated[list[str] | None, _IDS] = None,
    service: Service = DEFAULT_SERVICE,
    all_rows: Annotated[bool, _ALL] = False,
    topic: Annotated[str | None, _TOPIC] = None,
    code: Annotated[str | None, _CODE] = None,
    execute: Annotated[bool, _EXECUTE] = False,
    takeover_after: Annotated[
        float,
        typer.Option(
            min=0,
            help="seconds after which a claim of a replay that never finished (no record in "
            "the topic) is taken over",
        ),
    ] = 300.0,
    dlq_topic: DlqTopic = None,
    bootstrap: Bootstrap = None,
    stack: Stack = None,
    timeout: Timeout = 10.0,
    as_json: Json = False,
) -> None:
    """Produce dead letters' original records again, to their original topics, once each.

    Key, value and headers as the service received them, plus __cdc.replay.topic/partition/
    offset (the original position), __cdc.replay.from (<dlq topic>/<id>) and
    __cdc.replay.claim. Each is claimed in the status topic first and marked replayed after
    the broker acknowledged it; a dead letter a cut-off replay left claimed is looked for in its
    topic and marked replayed if found (else replayed after --takeover-after). Without
    --execute: a dry run listing what would be replayed.
    """
    from cdc_cli._dlq_render import report

    selection = _selection(ids, all_rows, topic, code, "replay")
    with open_dlq(service, dlq_topic, bootstrap, stack, timeout) as dlq:
        outcome = dlq.replay(selection, execute=execute, takeover_after_s=takeover_after)
    report(dlq, outcome, "replay", as_json)


@dlq_app.command("discard")
def discard_command(
    ids: Annotated[list[str] | None, _IDS] = None,
    service: Service = DEFAULT_SERVICE,
    all_rows: Annotated[bool, _ALL] = False,
    topic: Annotated[str | None, _TOPIC] = None,
    code: Annotated[str | None, _CODE] = None,
    reason: Annotated[str | None, typer.Option(help="why (kept in the status record)")] = None,
    execute: Annotated[bool, _EXECUTE] = False,
    dlq_topic: DlqTopic = None,
    bootstrap: Bootstrap = None,
    stack: Stack = None,
    timeout: Timeout = 10.0,
    as_json: Json = False,
) -> None:
    """Mark new dead letters discarded: they will not be replayed.

    Without --execute: a dry run listing what would be discarded.
    """
    from cdc_cli._dlq_render import report

    selection = _selection(ids, all_rows, topic, code, "discard")
    with open_dlq(service, dlq_topic, bootstrap, stack, timeout) as dlq:
        outcome = dlq.discard(selection, execute=execute, reason=reason)
    report(dlq, outcome, "discard", as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
