"""Table-driven tests of DynamoDB's capacity-unit arithmetic (quorumdb.api.capacity)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumdb.api import capacity
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, TableDef

KB = 1024


@pytest.mark.parametrize(
    ("size", "consistent", "transactional", "units"),
    [
        (0, True, False, 1.0),  # a missing item still costs one unit
        (0, False, False, 0.5),
        (1, True, False, 1.0),
        (4 * KB, True, False, 1.0),
        (4 * KB + 1, True, False, 2.0),
        (4 * KB + 1, False, False, 1.0),
        (10 * KB, False, False, 1.5),
        (400 * KB, True, False, 100.0),
        (400 * KB, False, False, 50.0),
        (1, True, True, 2.0),
        (1, False, True, 2.0),  # transactional reads are always consistent, doubled
        (9 * KB, True, True, 6.0),
        (1024 * KB, True, False, 256.0),  # a full Query page
    ],
)
def test_read_units(size: int, consistent: bool, transactional: bool, units: float) -> None:
    assert capacity.read_units(size, consistent=consistent, transactional=transactional) == units


@pytest.mark.parametrize(
    ("old", "new", "transactional", "units"),
    [
        (0, 0, False, 1.0),  # delete of a missing item
        (0, 1, False, 1.0),
        (0, KB, False, 1.0),
        (0, KB + 1, False, 2.0),
        (3 * KB, 10, False, 3.0),  # shrinking an item pays for the old size
        (10, 2500, False, 3.0),
        (400 * KB, 0, False, 400.0),
        (0, 1, True, 2.0),
        (0, 2500, True, 6.0),
    ],
)
def test_write_units(old: int, new: int, transactional: bool, units: float) -> None:
    assert capacity.write_units(old, new, transactional=transactional) == units


@given(st.integers(0, 10_000_000), st.booleans())
def test_read_units_monotonic_and_bounded(size: int, consistent: bool) -> None:
    u = capacity.read_units(size, consistent=consistent)
    u2 = capacity.read_units(size + 1, consistent=consistent)
    assert u <= u2
    full = capacity.read_units(size, consistent=True)
    assert u == (full if consistent else full / 2)
    assert (full - 1) * 4096 < max(size, 1) <= full * 4096


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (None, None),
        ("NONE", None),
        ("TOTAL", {"TableName": "t", "CapacityUnits": 1.5}),
        ("INDEXES", {"TableName": "t", "CapacityUnits": 1.5, "Table": {"CapacityUnits": 1.5}}),
    ],
)
def test_consumed_shapes(mode: str | None, expected: dict | None) -> None:
    assert capacity.consumed("t", capacity.wants_capacity({"ReturnConsumedCapacity": mode}), 1.5) == expected


def _table() -> TableDef:
    ks = KeySchema(hash=KeyAttr(name="pk", type="S"))
    return TableDef(
        name="t",
        table_id=1,
        uuid="u",
        key_schema=ks,
        attribute_definitions={"pk": "S", "g": "S", "sk2": "N"},
        created_at=0.0,
        indexes=(
            IndexDef(name="gsi", index_id=1, local=False, key_schema=KeySchema(hash=KeyAttr(name="g", type="S"))),
            IndexDef(
                name="lsi",
                index_id=2,
                local=True,
                key_schema=KeySchema(hash=KeyAttr(name="pk", type="S"), range=KeyAttr(name="sk2", type="N")),
            ),
        ),
    )


def test_index_write_units_split_local_and_global() -> None:
    local, glob = capacity.index_write_units(_table(), {"gsi": 100, "lsi": 2 * KB + 1, "gone": 5})
    assert local == {"lsi": 3.0}
    assert glob == {"gsi": 1.0}
    cc = capacity.consumed("t", "INDEXES", 2.0, local=local, glob=glob)
    assert cc == {
        "TableName": "t",
        "CapacityUnits": 6.0,
        "Table": {"CapacityUnits": 2.0},
        "LocalSecondaryIndexes": {"lsi": {"CapacityUnits": 3.0}},
        "GlobalSecondaryIndexes": {"gsi": {"CapacityUnits": 1.0}},
    }
    # TOTAL counts the index writes into the total but shows no breakdown.
    assert capacity.consumed("t", "TOTAL", 2.0, local=local, glob=glob) == {"TableName": "t", "CapacityUnits": 6.0}


def test_index_write_units_transactional_double() -> None:
    local, glob = capacity.index_write_units(_table(), {"gsi": 100}, transactional=True)
    assert glob == {"gsi": 2.0} and local == {}


def test_merge_by_table_keeps_first_seen_order_and_sums() -> None:
    out = capacity.merge_by_table(
        "INDEXES",
        [("b", 1.0, {}, {}), ("a", 2.0, {}, {"g": 1.0}), ("b", 0.5, {}, {}), ("a", 1.0, {}, {"g": 1.0})],
        kind="write",
    )
    assert out == [
        {"TableName": "b", "CapacityUnits": 1.5, "WriteCapacityUnits": 1.5,
         "Table": {"CapacityUnits": 1.5, "WriteCapacityUnits": 1.5}},
        {"TableName": "a", "CapacityUnits": 5.0, "WriteCapacityUnits": 5.0,
         "Table": {"CapacityUnits": 3.0, "WriteCapacityUnits": 3.0},
         "GlobalSecondaryIndexes": {"g": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}}},
    ]
    assert capacity.merge_by_table(None, [("a", 1.0, {}, {})]) is None


def _gsi_table(projection: str = "ALL") -> TableDef:
    return TableDef(
        name="t",
        table_id=1,
        uuid="u",
        key_schema=KeySchema(hash=KeyAttr(name="pk", type="S")),
        attribute_definitions={"pk": "S", "g": "S"},
        created_at=0.0,
        indexes=(
            IndexDef(name="gsi", index_id=1, local=False, projection=projection,
                     key_schema=KeySchema(hash=KeyAttr(name="g", type="S"))),
        ),
    )


_PK = {"pk": {"S": "a"}}
_BIG = {"S": "x" * 1500}


@pytest.mark.parametrize(
    ("projection", "old", "new", "units"),
    [
        ("ALL", None, {**_PK, "v": {"S": "1"}}, {}),  # not in the index
        ("ALL", None, {**_PK, "g": {"S": "1"}}, {"gsi": 1.0}),  # entry added
        ("ALL", {**_PK, "g": {"S": "1"}}, None, {"gsi": 1.0}),  # entry removed
        ("ALL", {**_PK, "g": {"S": "1"}}, {**_PK, "g": {"S": "1"}}, {}),  # unchanged
        ("ALL", {**_PK, "g": {"S": "1"}}, {**_PK, "g": {"S": "1"}, "v": _BIG}, {"gsi": 2.0}),  # updated in place
        ("ALL", {**_PK, "g": {"S": "1"}}, {**_PK, "g": {"S": "2"}}, {"gsi": 2.0}),  # key changed: delete + put
        ("ALL", {**_PK, "g": {"S": "1"}, "v": _BIG}, {**_PK, "g": {"S": "2"}, "v": _BIG}, {"gsi": 4.0}),
        ("KEYS_ONLY", {**_PK, "g": {"S": "1"}}, {**_PK, "g": {"S": "1"}, "v": _BIG}, {}),  # not projected
        ("KEYS_ONLY", None, {**_PK, "g": {"S": "1"}, "v": _BIG}, {"gsi": 1.0}),  # entry is small
    ],
)
def test_index_units_as_dynamodb_counts(projection: str, old: dict | None, new: dict | None, units: dict) -> None:
    local, glob = capacity.index_units(_gsi_table(projection), old, new)
    assert local == {} and glob == units
    if units:
        _, doubled = capacity.index_units(_gsi_table(projection), old, new, transactional=True)
        assert doubled == {n: u * 2 for n, u in units.items()}
