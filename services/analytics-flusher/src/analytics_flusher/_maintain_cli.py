"""``cdc lake maintain``: compaction and snapshot expiry of the lake's Iceberg tables
(``store._iceberg._maintain``), run by an operator or a schedule while the flusher writes.

``add_commands(lake)`` adds ``maintain`` to the ``lake`` group of the ``cdc`` application. The
catalog comes from the flusher's own settings (``FlusherSettings.catalog_config()``:
``LAKE_CATALOG``, ``LAKE_CATALOG_URI``, ``LAKE_WAREHOUSE``, ``LAKE_NAMESPACE``, the AWS
variables), each overridable by an option. Exit codes: 0 done (also when a table kept moving
and was left for the next run: maintenance is best effort; the output says so), 1 the catalog
or the warehouse unreachable, 2 bad options or no catalog configured.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from analytics_flusher.store._iceberg import CompactionResult, ExpiryResult

__all__ = ["add_commands", "maintain", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(?:\d+[smhdw])+")
_MIB = 1024 * 1024


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``2d``, ``1w``, or a sum of them (``1h30m``)."""
    compact = text.strip().lower()
    if not _DURATION.fullmatch(compact):
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 1h, 2d or 1h30m")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([smhdw])", compact))
    return timedelta(seconds=seconds)


# The defaults are store._iceberg's (DEFAULT_OLDER_THAN, DEFAULT_RETAIN_LAST,
# DEFAULT_TARGET_FILE_BYTES, DEFAULT_MIN_INPUT_FILES), written out so that `cdc --help` does
# not import pyiceberg.
def maintain(
    older_than: Annotated[
        str,
        typer.Option(help="expire snapshots older than this (90s, 30m, 1h, 2d, 1h30m)"),
    ] = "1h",
    retain_last: Annotated[
        int, typer.Option(min=1, help="keep at least this many of the newest snapshots")
    ] = 1,
    target_file_mb: Annotated[
        int, typer.Option(min=1, help="compacted file size; smaller files are compacted")
    ] = 128,
    min_files: Annotated[
        int, typer.Option(min=2, help="compact a partition once it has this many small files")
    ] = 5,
    dry_run: Annotated[bool, typer.Option(help="print what would be done; change nothing")] = False,
    catalog_uri: Annotated[
        str | None, typer.Option(help="the SQL catalog's database URL (LAKE_CATALOG_URI)")
    ] = None,
    warehouse: Annotated[
        str | None, typer.Option(help="s3://bucket/prefix of the tables (LAKE_WAREHOUSE)")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(help="the namespace of the tables (LAKE_NAMESPACE)")
    ] = None,
) -> None:
    """Compact the small files of the lake's Iceberg tables and expire their old snapshots
    (safe while the flusher writes)."""
    from consumer_runtime import RetryableError

    from analytics_flusher.store._iceberg import maintain as run
    from analytics_flusher.store._iceberg import open_catalog

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    config = _catalog_config(catalog_uri, warehouse, namespace)
    try:
        report = run(
            open_catalog(config),
            config.namespace,
            older_than=age,
            retain_last=retain_last,
            target_file_bytes=target_file_mb * _MIB,
            min_input_files=min_files,
            dry_run=dry_run,
        )
    except RetryableError as exc:
        typer.echo(f"error: {exc}; nothing is half done, run again once it is back", err=True)
        raise typer.Exit(1) from None
    if not report.tables:
        typer.echo(f"no tables in namespace {config.namespace}")
    for done in report.tables:
        typer.echo(_compaction_line(done.compaction))
        typer.echo(_expiry_line(done.expiry))
    if report.gave_up:
        typer.echo(f"left for the next run (the table kept moving): {', '.join(report.gave_up)}")


def _catalog_config(uri: str | None, warehouse: str | None, namespace: str | None) -> Any:
    """The catalog as ``cdc lake``'s other commands find it (``cli.catalog_config``: the
    options, the flusher's environment, else a running dev stack); errors exit 2."""
    from analytics_flusher.cli import LakeCliError, catalog_config

    try:
        return catalog_config(uri, warehouse, namespace, None)
    except LakeCliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _mb(n: int) -> str:
    return f"{n / _MIB:.1f} MiB"


def _compaction_line(result: CompactionResult) -> str:
    if result.gave_up:
        return f"{result.table}: compaction gave up after {result.attempts} plans"
    if not result.files_removed:
        return f"{result.table}: nothing to compact"
    verb = "would compact" if result.dry_run else "compacted"
    into = f"into {result.files_added} files"
    sizes = _mb(result.bytes_before)
    if not result.dry_run:
        sizes += f" -> {_mb(result.bytes_after)}, snapshot {result.snapshot_id}"
    return (
        f"{result.table}: {verb} {result.files_removed} files ({result.rows} rows) of "
        f"{', '.join(result.partitions)} {into} ({sizes})"
    )


def _expiry_line(result: ExpiryResult) -> str:
    if result.gave_up:
        return f"{result.table}: snapshot expiry gave up after {result.attempts} plans"
    positions = f", positions in {result.positions_snapshot}" if result.positions_snapshot else ""
    if not result.expired:
        return f"{result.table}: no snapshot to expire ({result.kept} kept{positions})"
    verb = "would expire" if result.dry_run else "expired"
    files = "would delete" if result.dry_run else "deleted"
    return (
        f"{result.table}: {verb} {len(result.expired)} snapshots, kept {result.kept}"
        f"{positions}; {files} {result.files_deleted} files only they referenced"
    )


def add_commands(lake: typer.Typer) -> None:
    """Add ``maintain`` to the ``cdc lake`` group."""
    lake.command("maintain")(maintain)
