"""``cdc status``: consumer groups, their members and assignments, offsets and lag.

For each group: its state, its members (client id, host, assigned partitions), and per
partition the committed offset, the end offset and the lag (end minus committed). A
sink-managed service resumes from the offsets stored in its own database, not from Kafka's:
with ``--database-url GROUP=URL`` (or the databases of the stack description) those are shown
beside Kafka's, with the lag they imply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdc_cli._options import Bootstrap, Json, Stack, Timeout

if TYPE_CHECKING:
    from consumer_runtime import GroupDescription, KafkaAdmin, TopicPartition, Watermarks

    from cdc_cli._connect import Connection


@dataclass
class PartitionStatus:
    partition: TopicPartition
    member: str | None  # client id of the member it is assigned to
    committed: int | None
    sink: int | None
    first: int
    end: int

    @property
    def lag(self) -> int | None:
        return None if self.committed is None else max(0, self.end - self.committed)

    @property
    def sink_lag(self) -> int | None:
        return None if self.sink is None else max(0, self.end - self.sink)

    def to_dict(self, with_sink: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "topic": self.partition.topic,
            "partition": self.partition.partition,
            "member": self.member,
            "committed": self.committed,
            "first": self.first,
            "end": self.end,
            "lag": self.lag,
        }
        if with_sink:
            out["sink_committed"] = self.sink
            out["sink_lag"] = self.sink_lag
        return out


@dataclass
class GroupStatus:
    description: GroupDescription
    service: str | None = None
    strategy: str | None = None
    database: str | None = None  # redacted URL of the sink database, when one was read
    sink_error: str | None = None
    partitions: list[PartitionStatus] = field(default_factory=list)

    @property
    def with_sink(self) -> bool:
        return self.database is not None

    @property
    def lag(self) -> int | None:
        lags = [p.lag for p in self.partitions if p.lag is not None]
        return sum(lags) if lags else None

    @property
    def sink_lag(self) -> int | None:
        lags = [p.sink_lag for p in self.partitions if p.sink_lag is not None]
        return sum(lags) if lags else None

    def to_dict(self) -> dict[str, Any]:
        desc = self.description
        out: dict[str, Any] = {
            "group": desc.group_id,
            "state": str(desc.state),
            "active": desc.active,
            "service": self.service,
            "strategy": self.strategy,
            "assignor": desc.assignor or None,
            "coordinator": desc.coordinator,
            "members": [
                {
                    "member_id": m.member_id,
                    "client_id": m.client_id,
                    "host": m.host,
                    "instance_id": m.instance_id,
                    "assignment": [
                        {"topic": tp.topic, "partition": tp.partition} for tp in m.assignment
                    ],
                }
                for m in desc.members
            ],
            "lag": self.lag,
            "partitions": [p.to_dict(self.with_sink) for p in self.partitions],
        }
        if self.with_sink or self.sink_error:
            out["sink"] = {
                "database": self.database,
                "lag": self.sink_lag,
                "error": self.sink_error,
            }
        return out


def collect(
    conn: Connection,
    admin: KafkaAdmin,
    groups: list[str],
    databases: dict[str, str],
) -> list[GroupStatus]:
    """Everything ``status`` and ``offsets show`` print, for the given groups."""
    from cdc_cli._catalogue import catalogue
    from cdc_cli._connect import CliError, redact, warn
    from cdc_cli._sinkdb import SinkOffsets

    descriptions = admin.describe_groups(groups)
    statuses: list[GroupStatus] = []
    offsets: list[tuple[GroupStatus, dict[TopicPartition, int], dict[TopicPartition, int]]] = []
    known = catalogue()
    for group in groups:
        service = conn.service_of(group)
        status = GroupStatus(
            descriptions[group],
            service=service,
            strategy=str(known[service].strategy) if service in known else None,
        )
        committed = admin.committed_offsets(group)
        stored: dict[TopicPartition, int] = {}
        url = databases.get(group) or conn.stack_database(group)
        if url:
            status.database = redact(url)
            sink = SinkOffsets(url)
            try:
                stored = sink.load(group)
            except CliError as exc:
                status.sink_error = exc.message
                status.database = None
                warn(f"group {group}: {exc.message}")
            finally:
                sink.close()
        offsets.append((status, committed, stored))
        statuses.append(status)
    partitions = sorted(
        {
            tp
            for status, committed, stored in offsets
            for tp in (*committed, *stored, *status.description.assigned_to())
        }
    )
    marks = _watermarks(admin, partitions)
    for status, committed, stored in offsets:
        owners = status.description.assigned_to()
        for tp in sorted({*committed, *stored, *owners}):
            mark = marks.get(tp)
            if mark is None:
                continue  # the topic is gone: nothing to read or lag behind
            member = owners.get(tp)
            status.partitions.append(
                PartitionStatus(
                    tp,
                    member.client_id if member is not None else None,
                    committed.get(tp),
                    stored.get(tp) if status.database is not None else None,
                    mark.low,
                    mark.high,
                )
            )
    return statuses


def _watermarks(
    admin: KafkaAdmin, partitions: list[TopicPartition]
) -> dict[TopicPartition, Watermarks]:
    """Watermarks of the partitions that still exist (a group may keep offsets of a deleted
    topic)."""
    existing = admin.topics()
    live = [tp for tp in partitions if tp.partition < existing.get(tp.topic, 0)]
    return admin.watermarks(live)


def render(statuses: list[GroupStatus], *, members: bool = True) -> None:
    from rich.table import Table
    from rich.text import Text

    from cdc_cli._connect import stdout

    console = stdout()
    if not statuses:
        console.print("no consumer groups")
        return
    for status in statuses:
        desc = status.description
        title = Text.assemble(
            ("group ", "dim"),
            (desc.group_id, "bold"),
            ("  state ", "dim"),
            (str(desc.state), "green" if desc.active else "yellow"),
            ("  members ", "dim"),
            (str(len(desc.members)), ""),
            ("  lag ", "dim"),
            ("-" if status.lag is None else str(status.lag), "bold"),
        )
        if status.service:
            title.append(f"  service {status.service} ({status.strategy})", "dim")
        if status.with_sink:
            sink_lag = "-" if status.sink_lag is None else str(status.sink_lag)
            title.append(f"  sink lag {sink_lag}", "bold")
        console.print(title)
        table = Table(expand=False)
        table.add_column("topic")
        table.add_column("partition", justify="right")
        if members:
            table.add_column("member")
        table.add_column("committed", justify="right")
        if status.with_sink:
            table.add_column("sink", justify="right")
        if not members:
            table.add_column("first", justify="right")
        table.add_column("end", justify="right")
        table.add_column("lag", justify="right")
        if status.with_sink:
            table.add_column("sink lag", justify="right")
        for p in status.partitions:
            row = [p.partition.topic, str(p.partition.partition)]
            if members:
                row.append(p.member or "-")
            row.append(_n(p.committed))
            if status.with_sink:
                row.append(_n(p.sink))
            if not members:
                row.append(str(p.first))
            row += [str(p.end), _n(p.lag)]
            if status.with_sink:
                row.append(_n(p.sink_lag))
            table.add_row(*(Text(cell) for cell in row))
        if status.partitions:
            console.print(table)
        else:
            console.print(Text("  no committed offsets and no assigned partitions", "dim"))
        if status.with_sink:
            console.print(Text(f"  sink offsets: {status.database}", "dim"))
        if members and desc.members:
            mt = Table(show_header=True, box=None, padding=(0, 2))
            for name in ("client id", "host", "member id", "partitions"):
                mt.add_column(name)
            for m in desc.members:
                assigned = ", ".join(str(tp) for tp in m.assignment) or "-"
                mt.add_row(Text(m.client_id), Text(m.host), Text(m.member_id), Text(assigned))
            console.print(mt)
        elif members and desc.active:
            console.print(Text("  active, but the broker reported no member details", "dim"))
        console.print()


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status_command(
        group: Annotated[
            list[str] | None,
            typer.Option("--group", "-g", help="only this group (repeatable); default: all"),
        ] = None,
        database_url: Annotated[
            list[str] | None,
            typer.Option(
                "--database-url",
                metavar="GROUP=URL",
                help="the sink database of a sink-managed group, to show the offsets stored "
                "there (repeatable)",
            ),
        ] = None,
        bootstrap: Bootstrap = None,
        stack: Stack = None,
        timeout: Timeout = 10.0,
        as_json: Json = False,
    ) -> None:
        """Consumer groups: state, members and their partitions, committed and end offsets, lag.

        Lag is the end offset minus the committed offset. Sink-managed services (event store,
        statistics) resume from the offsets stored in their own database: pass --database-url
        GROUP=URL (or run beside a `make up` stack) to see those and the lag they imply.
        """
        from cdc_cli._connect import CliError, connect, fail, parse_group_urls, print_json, warn

        try:
            conn = connect(bootstrap, stack, timeout)
            databases = parse_group_urls(database_url or [])
            with conn.admin() as admin:
                groups = list(dict.fromkeys(group or [g.group_id for g in admin.list_groups()]))
                for unused in sorted(set(databases) - set(groups)):
                    warn(f"--database-url for group {unused!r}, which is not shown")
                statuses = collect(conn, admin, groups, databases)
        except CliError as exc:
            fail(exc)
        if as_json:
            print_json({"bootstrap": conn.bootstrap, "groups": [s.to_dict() for s in statuses]})
        else:
            render(statuses)
