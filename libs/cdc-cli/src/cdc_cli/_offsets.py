"""``cdc offsets show|reset`` and ``cdc replay``: move a consumer group's offsets.

A reset is a plan first: per partition the current offset(s) and the new one, printed and
changed nowhere (a dry run) unless ``--execute`` is given. Like ``kafka-consumer-groups
--reset-offsets``, it refuses to run while the group has members: a running consumer would
overwrite the new offsets with its next commit. For a sink-managed service the offsets that
decide where it resumes live in its database (``consumer_offsets``, read on every partition
assignment), so those rows are rewritten too, in one transaction that commits only after Kafka
accepted its own change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cdc_cli._options import Bootstrap, Json, Stack, Timeout

if TYPE_CHECKING:
    from consumer_runtime import GroupDescription, KafkaAdmin, TopicPartition

    from cdc_cli._catalogue import ServiceInfo
    from cdc_cli._connect import Connection
    from cdc_cli._plan import PlanRow, ResetTarget
    from cdc_cli._sinkdb import SinkOffsets

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

    @offsets.command("show")
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
                statuses = collect(
                    conn, admin, [group], {group: database_url} if database_url else {}
                )
        except CliError as exc:
            fail(exc)
        if as_json:
            print_json(statuses[0].to_dict())
        else:
            render(statuses, members=False)

    @offsets.command("reset")
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

        try:
            target = _target(to, "--to")
            conn = connect(bootstrap, stack, timeout)
            service = conn.service_of(group)
            info = _service_info(service)
            with conn.admin() as admin:
                _reset(
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

    @app.command("replay", help=REPLAY_HELP)
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

        from cdc_cli._catalogue import catalogue
        from cdc_cli._connect import CliError, connect, fail, stdout
        from cdc_cli._plan import TargetKind

        try:
            known = catalogue()
            if service not in known:
                raise CliError(f"unknown service {service!r}: one of {', '.join(known)}", code=2)
            info = known[service]
            target = _target(from_, "--from")
            if target.kind is not TargetKind.TIME:
                raise CliError(
                    f"--from expects an ISO-8601 time, got {from_!r} "
                    "(for earliest/latest/offsets use `cdc offsets reset`)",
                    code=2,
                )
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
                _reset(
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


def _service_info(service: str | None) -> ServiceInfo | None:
    from cdc_cli._catalogue import catalogue

    return catalogue().get(service) if service else None


def _reset(
    conn: Connection,
    admin: KafkaAdmin,
    *,
    group: str,
    target: ResetTarget,
    topics: list[str] | None,
    database_url: str | None,
    service: ServiceInfo | None,
    kafka_only: bool,
    execute: bool,
    as_json: bool,
    from_offsets_reset: bool = True,
) -> None:
    """Plan, print and (with ``execute``) apply a reset of ``group`` to ``target``."""
    from consumer_runtime import GroupActiveError

    from cdc_cli._connect import CliError, warn
    from cdc_cli._plan import TargetKind, build_plan
    from cdc_cli._sinkdb import SinkOffsets

    url = None if kafka_only else (database_url or conn.stack_database(group))
    if service is not None and service.sink_managed and url is None and not kafka_only:
        raise CliError(
            f"group {group!r} belongs to {service.name}, a sink-managed service: it resumes "
            "from the offsets in its database's consumer_offsets table, so resetting only "
            "Kafka's offsets would change nothing. Pass --database-url URL (the service's "
            "DATABASE_URL)" + (" or --kafka-only" if from_offsets_reset else "")
        )
    description = admin.describe_group(group)
    sink = SinkOffsets(url) if url else None
    try:
        stored = sink.load(group) if sink is not None else None
        committed = admin.committed_offsets(group)
        partitions = _partitions(admin, group, topics, committed, stored)
        marks = admin.watermarks(partitions)
        times = (
            admin.offsets_for_times(partitions, int(target.timestamp_ms or 0))
            if target.kind is TargetKind.TIME
            else None
        )
        plan = build_plan(partitions, target, marks, committed, stored, times)
        if not execute or description.active:
            _print_plan(group, description, target, plan, sink, service, as_json, executed=False)
            if description.active:
                message = _active_message(group, description, service)
                if execute:
                    raise CliError(message)
                warn(message)
            if not as_json:
                warn("dry run: nothing changed; add --execute to apply this plan")
            return
        new = {row.partition: row.new for row in plan}

        def apply_to_kafka() -> None:
            admin.alter_committed_offsets(group, new)

        try:
            if sink is not None:
                # Kafka's change runs inside the database transaction: if Kafka refuses it (a
                # member joined meanwhile), the sink's rows are rolled back.
                sink.rewrite(group, new, before_commit=apply_to_kafka)
            else:
                apply_to_kafka()
        except GroupActiveError as exc:
            # A member joined between the check and the change; the database was rolled back.
            raise CliError(_active_message(group, admin.describe_group(group), service)) from exc
        after_kafka = admin.committed_offsets(group, list(new))
        after_sink = sink.load(group) if sink is not None else None
        wrong = [
            str(tp)
            for tp, off in new.items()
            if after_kafka.get(tp) != off or (after_sink is not None and after_sink.get(tp) != off)
        ]
        if wrong:
            raise CliError(
                f"the new offsets did not stick on {', '.join(wrong[:5])}: did a consumer of "
                f"group {group!r} start meanwhile? Check with `cdc offsets show --group {group}`"
            )
        _print_plan(group, description, target, plan, sink, service, as_json, executed=True)
    finally:
        if sink is not None:
            sink.close()


def _partitions(
    admin: KafkaAdmin,
    group: str,
    topics: list[str] | None,
    committed: dict[TopicPartition, int],
    stored: dict[TopicPartition, int] | None,
) -> list[TopicPartition]:
    """The partitions to reset: of the named topics, or of every topic the group has offsets
    for (in Kafka or in the sink). Topics without offsets are left alone: the group has not
    read them yet and will start them from the beginning anyway."""
    from consumer_runtime import TopicPartition

    from cdc_cli._connect import CliError, warn

    if topics:
        return admin.partitions(topics)
    known = {tp.topic for tp in committed} | {tp.topic for tp in stored or {}}
    if not known:
        where = "in Kafka or in its database" if stored is not None else "in Kafka"
        raise CliError(
            f"group {group!r} has no committed offsets {where}: name the topics with --topic"
        )
    existing = admin.topics()
    gone = sorted(known - set(existing))
    if gone:
        warn(f"skipping offsets of topics that no longer exist: {', '.join(gone)}")
    return [TopicPartition(t, p) for t in sorted(known & set(existing)) for p in range(existing[t])]


def _active_message(group: str, description: GroupDescription, service: ServiceInfo | None) -> str:
    members = len(description.members)
    who = f"{members} member(s)" if members else f"state {description.state}"
    name = service.name if service is not None else "<service>"
    return (
        f"consumer group {group!r} is active ({who}): its consumers would overwrite the new "
        f"offsets. Stop them first: scale the service to 0 (kubectl scale deployment/{name} "
        f"-n cdc-consumers --replicas=0, or stop `make up`), wait until `cdc status --group "
        f"{group}` shows it Empty, then run this again"
    )


def _print_plan(
    group: str,
    description: GroupDescription,
    target: ResetTarget,
    plan: list[PlanRow],
    sink: SinkOffsets | None,
    service: ServiceInfo | None,
    as_json: bool,
    *,
    executed: bool,
) -> None:
    from rich.table import Table
    from rich.text import Text

    from cdc_cli._connect import print_json, stdout

    with_sink = sink is not None
    if as_json:
        print_json(
            {
                "group": group,
                "state": str(description.state),
                "active": description.active,
                "service": service.name if service is not None else None,
                "strategy": str(service.strategy) if service is not None else None,
                "target": target.describe(),
                "database": sink.shown if sink is not None else None,
                "executed": executed,
                "partitions": [row.to_dict(with_sink) for row in plan],
            }
        )
        return
    verb = "applied" if executed else "plan"
    title = Text.assemble(
        (f"{verb}: ", "bold green" if executed else "bold"),
        ("reset group ", "dim"),
        (group, "bold"),
        (" to ", "dim"),
        (target.describe(), "bold"),
        (f"  state {description.state}", "dim"),
    )
    console = stdout()
    console.print(title)
    table = Table()
    table.add_column("topic")
    table.add_column("partition", justify="right")
    table.add_column("current", justify="right")
    if with_sink:
        table.add_column("sink current", justify="right")
    table.add_column("new", justify="right")
    table.add_column("first..end", justify="right")
    table.add_column("note")
    for row in plan:
        cells = [row.partition.topic, str(row.partition.partition), _n(row.kafka)]
        if with_sink:
            cells.append(_n(row.sink))
        cells += [str(row.new), f"{row.low}..{row.high}", row.note]
        table.add_row(*(Text(c, style="" if row.changes else "dim") for c in cells))
    console.print(table)
    if sink is not None:
        console.print(Text(f"  sink offsets: {sink.table_name} in {sink.shown}", "dim"))


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)
