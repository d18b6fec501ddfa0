"""The emulator's Glue honours ``UpdateTable``'s ``VersionId`` as AWS Glue does (``devstack.
_moto_glue``): an update made on a version that is no longer current is refused with
``ConcurrentModificationException``, so two Iceberg commits on one table cannot both land.
Applied in-process (moto's ``mock_aws``) so a moto upgrade that changes what the patch wraps
fails here by name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from devstack import _moto_patches
from moto import mock_aws


@pytest.fixture
def glue() -> Iterator[Any]:
    _moto_patches.apply()
    with mock_aws():
        client = boto3.client(
            "glue",
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_database(DatabaseInput={"Name": "db"})
        client.create_table(
            DatabaseName="db", TableInput={"Name": "t", "Parameters": {"location": "v1"}}
        )
        yield client


def _update(glue: Any, location: str, **version: str) -> None:
    glue.update_table(
        DatabaseName="db", TableInput={"Name": "t", "Parameters": {"location": location}}, **version
    )


def _current(glue: Any) -> tuple[str, str]:
    table = glue.get_table(DatabaseName="db", Name="t")["Table"]
    return table["VersionId"], table["Parameters"]["location"]


def test_an_update_on_the_current_version_lands_and_moves_the_version(glue: Any) -> None:
    version, _ = _current(glue)
    _update(glue, "v2", VersionId=version)
    moved, location = _current(glue)
    assert location == "v2" and moved != version


def test_an_update_on_a_stale_version_is_refused_and_changes_nothing(glue: Any) -> None:
    read_by_both, _ = _current(glue)
    _update(glue, "first", VersionId=read_by_both)
    after_first = _current(glue)
    with pytest.raises(glue.exceptions.ConcurrentModificationException) as refused:
        _update(glue, "second", VersionId=read_by_both)
    assert isinstance(refused.value, ClientError)
    assert _current(glue) == after_first


def test_an_update_without_a_version_is_applied_as_before(glue: Any) -> None:
    _update(glue, "v2")
    assert _current(glue)[1] == "v2"


def test_a_missing_table_is_still_entity_not_found(glue: Any) -> None:
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.update_table(DatabaseName="db", TableInput={"Name": "nope"}, VersionId="1")
