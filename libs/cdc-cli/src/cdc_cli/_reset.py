"""Resetting a consumer group's offsets: plan, print, and with ``execute`` apply.

Behind ``cdc offsets reset`` and ``cdc replay`` (``_offsets``). The plan is per partition: the
current offset in Kafka (and in a sink-managed service's database), the new one from the target
(``_plan.build_plan``: earliest, latest, a time or an offset, clamped to the partition's range),
its first and end offset. Only the topics the group has offsets for are planned unless topics
are named. Nothing changes while the group has members (their next commit would overwrite the
new offsets); applied, Kafka's change runs inside the database transaction that rewrites the
sink's ``consumer_offsets`` rows, and both are read back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consumer_runtime import GroupDescription, KafkaAdmin, TopicPartition

    from cdc_cli._catalogue import ServiceInfo
    from cdc_cli._connect import Connection
    from cdc_cli._plan import PlanRow, ResetTarget
    from cdc_cli._sinkdb import SinkOffsets


def reset_group(
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
        _apply(admin, group, {row.partition: row.new for row in plan}, sink, service)
        _print_plan(group, description, target, plan, sink, service, as_json, executed=True)
    finally:
        if sink is not None:
            sink.close()


def _apply(
    admin: KafkaAdmin,
    group: str,
    new: dict[TopicPartition, int],
    sink: SinkOffsets | None,
    service: ServiceInfo | None,
) -> None:
    """Set ``group``'s offsets to ``new`` in Kafka (and the sink's database), then read them
    back: ``CliError`` if a member joined meanwhile or they did not stick."""
    from consumer_runtime import GroupActiveError

    from cdc_cli._connect import CliError

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
