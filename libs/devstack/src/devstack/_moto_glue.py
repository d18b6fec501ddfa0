"""A fix applied to moto's Glue inside the emulator's server process (``_moto_patches.apply``).

``UpdateTable`` with ``VersionId``: AWS Glue updates a table only if its current version is
that id and otherwise answers ``ConcurrentModificationException`` (optimistic locking; the
Iceberg AWS documentation, "Optimistic Locking"). pyiceberg's ``GlueCatalog.commit_table``
relies on it: it reads the table (and its ``VersionId``), checks the commit's requirements
against the metadata it read, writes new metadata and updates the table with that
``VersionId``; a commit landing in between must make it fail. moto 5 ignores ``VersionId``
and applies every update, so on the emulator two writers' commits would both land, each on
the metadata it read, and the second would silently drop the first's snapshot: the lake's
fencing and exactly-once tests could not fail the way they must. The patch refuses an update
whose ``VersionId`` is not the table's current version, with Glue's error code, before moto's
own ``update_table`` runs; without ``VersionId`` an update is applied as before. The check and
the update are atomic because the server handles one request at a time (``moto_server``).
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["apply"]


def apply() -> None:
    """Install the check on moto's ``GlueResponse.update_table`` (call once)."""
    from moto.core.exceptions import JsonRESTError
    from moto.glue.responses import GlueResponse

    update_table = GlueResponse.update_table

    @functools.wraps(update_table)
    def versioned_update_table(self: Any) -> Any:
        version_id = self.parameters.get("VersionId")
        if version_id is not None:
            database = self.parameters.get("DatabaseName")
            name = (self.parameters.get("TableInput") or {}).get("Name")
            # Raises EntityNotFoundException as moto's update would, for a missing table.
            current = str(self.glue_backend.get_table(database, name)._current_version)
            if str(version_id) != current:
                raise JsonRESTError(
                    "ConcurrentModificationException",
                    f"Update table failed due to concurrent modifications: table {database}."
                    f"{name} is at version {current}, not {version_id}.",
                )
        return update_table(self)

    GlueResponse.update_table = versioned_update_table  # type: ignore[method-assign]
