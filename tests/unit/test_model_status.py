"""Stored status deadlines: what TableDef/IndexDef report over time, and their records."""

from __future__ import annotations

import dataclasses

import pytest

from quorumdb.api.lifecycle import in_use_error, serves_items, status_deadline, status_delay_s
from quorumdb.model.schema import GONE, IndexDef, KeyAttr, KeySchema, TableDef, table_name_of

KS = KeySchema(hash=KeyAttr(name="pk", type="S"))
TABLE = TableDef(name="t", table_id=1, uuid="u", key_schema=KS, attribute_definitions={"pk": "S"}, created_at=0.0)
INDEX = IndexDef(name="ix", index_id=1, local=False, key_schema=KeySchema(hash=KeyAttr(name="g", type="S")))


@pytest.mark.parametrize(
    ("status", "before", "after", "items_before"),
    [
        ("CREATING", "CREATING", "ACTIVE", False),
        ("UPDATING", "UPDATING", "ACTIVE", True),
        ("DELETING", "DELETING", GONE, False),
        ("ACTIVE", "ACTIVE", "ACTIVE", True),
    ],
)
def test_table_status_until_the_deadline(status: str, before: str, after: str, items_before: bool) -> None:
    t = dataclasses.replace(TABLE, status=status, status_until=100.0)
    assert t.status_at(99.9) == before
    assert t.status_at(100.0) == after
    assert serves_items(t, 99.9) is items_before
    assert serves_items(t, 100.0) is (after == "ACTIVE")


def test_table_without_deadline_keeps_its_status() -> None:
    assert TABLE.status_at(1e12) == "ACTIVE"
    assert dataclasses.replace(TABLE, status="DELETING").status_at(1e12) == "DELETING"


def test_index_is_creating_until_backfilled_and_the_deadline() -> None:
    ix = dataclasses.replace(INDEX, status="CREATING", backfilling=True, status_until=10.0)
    assert ix.status_at(50.0) == "CREATING"  # the backfill is not done
    done = dataclasses.replace(ix, status="ACTIVE", backfilling=False)
    assert done.status_at(9.0) == "CREATING"
    assert done.status_at(10.0) == "ACTIVE"


def test_records_round_trip_and_old_records_read() -> None:
    t = dataclasses.replace(
        TABLE,
        status="UPDATING",
        status_until=5.0,
        indexes=(dataclasses.replace(INDEX, status_until=4.0),),
        deleting_indexes=(dataclasses.replace(INDEX, name="old", status="DELETING", status_until=6.0),),
    )
    assert TableDef.from_record(t.to_record()) == t
    rec = TABLE.to_record()
    for k in ("status_until", "deleting_indexes"):
        del rec[k]
    assert TableDef.from_record(rec) == TABLE


def test_status_delay_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUORUMDB_TABLE_STATUS_DELAY_MS", raising=False)
    assert status_delay_s() == 0.0
    assert status_deadline(10.0) is None  # nothing stored: over at once
    monkeypatch.setenv("QUORUMDB_TABLE_STATUS_DELAY_MS", "1500")
    assert status_delay_s() == 1.5
    assert status_deadline(10.0) == 11.5
    monkeypatch.setenv("QUORUMDB_TABLE_STATUS_DELAY_MS", "soon")
    assert status_delay_s() == 0.0


def test_in_use_messages() -> None:
    assert in_use_error("t", "CREATING").message == (
        "Attempt to change a resource which is still in use: Table is being created: t"
    )
    assert in_use_error("t", "DELETING").message.endswith("Table is being deleted: t")


def test_table_name_of_an_arn() -> None:
    assert table_name_of("arn:aws:dynamodb:eu-west-1:123456789012:table/Music") == "Music"
    assert table_name_of("Music") == "Music"
    for not_arn in ("arn:aws:dynamodb:us-east-1:000000000000:table/Music/index/x", "arn:aws:dynamodb:us-east-1:0:table/Music"):
        assert table_name_of(not_arn) == not_arn
