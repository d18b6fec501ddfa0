"""``cdc offsets show|reset`` and ``cdc replay``: move a consumer group's offsets.

A reset is a plan first: per partition the current offset(s) and the new one, printed and
changed nowhere (a dry run) unless ``--execute`` is given. Like ``kafka-consumer-groups
--reset-offsets``, it refuses to run while the group has members: a running consumer would
overwrite the new offsets with its next commit. For a sink-managed service the offsets that
decide where it resumes live in its database (``consumer_offsets``, read on every partition
assignment), so those rows are rewritten too, in one transaction that commits only after Kafka
accepted its own change. This module holds the commands and their options; planning, printing
and applying a reset is ``_reset``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cdc_cli._options import Bootstrap, Json, Stack, Timeout

if TYPE_CHECKING:
    from cdc_cli._catalogue import ServiceInfo
    from cdc_cli._plan import ResetTarget

Group = Annotated[str, typer.Option("--group", "-g", help="the consumer group", show_default=False)]
Topics = Annotated[
    list[str] | None,
    typer.Option(
        "--topic",
        "-t",
        help="only these topics, all their partitions (repeatable); default: every topic the "
        "group has offsets for",
    ),
]
Execute = Annotated[
    bool, typer.Option("--execute", help="apply the plan (without it: a dry run, nothing changes)")
]

REPLAY_HELP = """Re-read one service's topics from a point in time.

Resolves the service's consumer group (`<service>-group`, or the stack's, or --group), its
commit strategy and the topics the group has offsets for, then resets the group to the first
record at or after TIME on every partition, exactly like `cdc offsets reset --to TIME`: a dry
run unless --execute, refused while the group has members (scale the service to 0 first; it
re-reads from TIME when it starts again). For the sink-managed services (event-store-writer,
stats-aggregator) the offsets in the service's database are rewritten too (--database-url, or
the stack's database).

Why replaying is safe, per sink: event-store-writer: a stored event_id is dropped
(cdc_event_ids primary key; user events ON CONFLICT (event_id) DO NOTHING), so re-read records
add no row. stats-aggregator: a change at or before a key's last applied source position (LSN)
is skipped, and user events count once by event_id. search-indexer: writes are version-guarded
by Kafka offset, so a re-read change is skipped as a duplicate or stale. analytics-flusher: the
same offset range is rewritten as byte-identical objects under the same keys, and the exact
totals come from the latest image of each row by Kafka offset, so nothing is counted twice (the
per-window summary reports are deltas: after a replay, parts with overlapping ranges
double-count when summed; use the image query for exact figures).

Records that still fail to decode go to the dead-letter topic again."""


def register(app: typer.Typer) -> None:
    offsets = typer.Typer(no_args_is_help=True, help="Show or reset a consumer group's offsets.")
    app.add_typer(offsets, name="offsets")
    offsets.command("show")(show_command)
    offsets.command("reset")(reset_command)
    app.command("replay", help=REPLAY_HELP)(replay_command)


def show_command(
    group: Group,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="the sink database of a sink-managed group, to show its stored offsets "
            "(default: the stack's database of the group's service)",
        ),
    ] = None,
    bootstrap: Bootstrap = None,
    stack: Stack = None,
    timeout: Timeout = 10.0,
    as_json: Json = False,
) -> None:
    """A group's state and, per partition, committed offset (Kafka and sink), first and end
    offset, lag."""
    from cdc_cli._connect import CliError, connect, fail, print_json
    from cdc_cli._status import collect, render

    try:
        conn = connect(bootstrap, stack, timeout)
        with conn.admin() as admin:
            statuses = collect(conn, admin, [group], {group: database_url} if database_url else {})
    except CliError as exc:
        fail(exc)
    if as_json:
        print_json(statuses[0].to_dict())
    else:
        render(statuses, members=False)


def reset_command(
    group: Group,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="earliest|latest|TIME|OFFSET",
            help="earliest, latest, an ISO-8601 time (first record at or after it; UTC "
            "without a zone) or an offset (clamped to each partition's range)",
            show_default=False,
        ),
    ],
    topic: Topics = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="sink-managed group: its service's database, whose consumer_offsets rows "
            "are rewritten in the same step (default: the stack's database of the service)",
        ),
    ] = None,
    kafka_only: Annotated[
        bool,
        typer.Option(
            "--kafka-only",
            help="reset only Kafka's offsets of a known sink-managed group (its service "
            "ignores them while its database has offsets)",
        ),
    ] = False,
    execute: Execute = False,
    bootstrap: Bootstrap = None,
    stack: Stack = None,
    timeout: Timeout = 10.0,
    as_json: Json = False,
) -> None:
    """Plan (and with --execute apply) new committed offsets for a group.

    Refused while the group has active members: scale its service to 0 first. For a
    sink-managed group (event store, statistics) the offsets in the service's database are
    rewritten too, in one transaction with Kafka's change.
    """
    from cdc_cli._connect import CliError, connect, fail
    from cdc_cli._reset import reset_group

    try:
        target = _target(to, "--to")
        conn = connect(bootstrap, stack, timeout)
        service = conn.service_of(group)
        info = _service_info(service)
        with conn.admin() as admin:
            reset_group(
                conn,
                admin,
                group=group,
                target=target,
                topics=topic,
                database_url=database_url,
                service=info,
                kafka_only=kafka_only,
                execute=execute,
                as_json=as_json,
            )
    except CliError as exc:
        fail(exc)


def replay_command(
    service: Annotated[
        str,
        typer.Option(
            "--service",
            "-s",
            help="event-store-writer, stats-aggregator, search-indexer or analytics-flusher",
            show_default=False,
        ),
    ],
    from_: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="TIME",
            help="ISO-8601 time to re-read from (UTC without a zone)",
            show_default=False,
        ),
    ],
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            "-g",
            help="the service's group (default: the stack's, or <service>-group)",
        ),
    ] = None,
    topic: Topics = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="sink-managed services: the service's database (default: the stack's)",
        ),
    ] = None,
    execute: Execute = False,
    bootstrap: Bootstrap = None,
    stack: Stack = None,
    timeout: Timeout = 10.0,
    as_json: Json = False,
) -> None:
    from rich.markup import escape

    from cdc_cli._connect import CliError, connect, fail, stdout
    from cdc_cli._reset import reset_group

    try:
        info = _known_service(service)
        target = _time_target(from_, "--from")
        conn = connect(bootstrap, stack, timeout)
        the_group = group or conn.group_of(service)
        if not as_json:
            sink = escape(info.sink_description)
            stdout().print(
                f"replay [bold]{escape(service)}[/] ({info.strategy}: {sink}) "
                f"group [bold]{escape(the_group)}[/] from {target.describe()}\n"
                f"[dim]safe to replay: {escape(info.replay_safety)}.[/]"
            )
        with conn.admin() as admin:
            reset_group(
                conn,
                admin,
                group=the_group,
                target=target,
                topics=topic,
                database_url=database_url,
                service=info,
                kafka_only=False,
                execute=execute,
                as_json=as_json,
                from_offsets_reset=False,
            )
    except CliError as exc:
        fail(exc)


def _target(text: str, option: str) -> ResetTarget:
    from cdc_cli._connect import CliError
    from cdc_cli._plan import ResetTarget

    try:
        return ResetTarget.parse(text)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}", code=2) from exc


def _time_target(text: str, option: str) -> ResetTarget:
    """``_target`` that must be a time (``cdc replay --from``)."""
    from cdc_cli._connect import CliError
    from cdc_cli._plan import TargetKind

    target = _target(text, option)
    if target.kind is not TargetKind.TIME:
        raise CliError(
            f"{option} expects an ISO-8601 time, got {text!r} "
            "(for earliest/latest/offsets use `cdc offsets reset`)",
            code=2,
        )
    return target


def _known_service(service: str) -> ServiceInfo:
    from cdc_cli._catalogue import catalogue
    from cdc_cli._connect import CliError

    known = catalogue()
    if service not in known:
        raise CliError(f"unknown service {service!r}: one of {', '.join(known)}", code=2)
    return known[service]


def _service_info(service: str | None) -> ServiceInfo | None:
    from cdc_cli._catalogue import catalogue

    return catalogue().get(service) if service else None
