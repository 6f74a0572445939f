"""Multi-attribute GSI keys: schema records, the storage key encoding and its order."""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_model_keys import numbers, texts

from quorumdb.db.records import index_prefix
from quorumdb.db.writer import index_entry
from quorumdb.errors import ValidationError
from quorumdb.model.keys import encode_partition, encode_value, extract_key, partition_hash
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema, TableDef

TABLE = TableDef(
    name="t",
    table_id=7,
    uuid="u",
    key_schema=KeySchema(hash=KeyAttr(name="pk", type="S")),
    attribute_definitions={"pk": "S"},
    created_at=0.0,
)

SORT_TYPES = ("S", "N", "B")


def multi_index(range_types: tuple[str, ...]) -> IndexDef:
    ranges = [KeyAttr(name=f"s{i}", type=t) for i, t in enumerate(range_types)]  # type: ignore[arg-type]
    return IndexDef(
        name="ix",
        index_id=1,
        local=False,
        key_schema=KeySchema(
            hash=KeyAttr(name="h0", type="S"),
            extra_hash=(KeyAttr(name="h1", type="N"),),
            range=ranges[0],
            extra_range=tuple(ranges[1:]),
        ),
    )


def av(type_tag: str, value: Any) -> dict[str, str]:
    if type_tag == "B":
        return {"B": base64.b64encode(value).decode()}
    return {type_tag: value}


def natural(type_tag: str, value: Any) -> Any:
    """The value as DynamoDB orders it: UTF-8 bytes, numbers by value, raw bytes."""
    if type_tag == "S":
        return value.encode()
    if type_tag == "N":
        return Decimal(value)
    return value


def sort_value(type_tag: str) -> st.SearchStrategy[Any]:
    if type_tag == "S":
        return texts.filter(bool)
    if type_tag == "N":
        return numbers()
    return st.binary(min_size=1, max_size=6)


# --- schema -----------------------------------------------------------------------------------


def test_schema_attrs_wire_and_record_round_trip() -> None:
    ks = multi_index(("S", "N", "B")).key_schema
    assert ks.multi_attribute
    assert ks.names == ("h0", "h1", "s0", "s1", "s2")
    assert ks.to_wire() == [
        {"AttributeName": "h0", "KeyType": "HASH"},
        {"AttributeName": "h1", "KeyType": "HASH"},
        {"AttributeName": "s0", "KeyType": "RANGE"},
        {"AttributeName": "s1", "KeyType": "RANGE"},
        {"AttributeName": "s2", "KeyType": "RANGE"},
    ]
    assert KeySchema.from_record(ks.to_record()) == ks


def test_single_attribute_records_are_unchanged() -> None:
    ks = KeySchema(hash=KeyAttr(name="a", type="S"), range=KeyAttr(name="b", type="N"))
    assert ks.to_record() == {"hash": ["a", "S"], "range": ["b", "N"]}
    assert not ks.multi_attribute


def test_extract_key_checks_every_attribute() -> None:
    ks = multi_index(("S",)).key_schema
    item = {"h0": {"S": "a"}, "h1": {"N": "01"}, "s0": {"S": "x"}, "other": {"S": "y"}}
    assert extract_key(ks, item, exact=False) == {"h0": {"S": "a"}, "h1": {"N": "1"}, "s0": {"S": "x"}}
    with pytest.raises(ValidationError, match="Missing the key h1"):
        extract_key(ks, {"h0": {"S": "a"}, "s0": {"S": "x"}}, exact=False)
    with pytest.raises(ValidationError, match="does not match the schema"):
        extract_key(ks, item, exact=True)


# --- encoding ---------------------------------------------------------------------------------


def test_single_attribute_partition_keeps_the_table_layout() -> None:
    for value in ({"S": "abc"}, {"N": "-1.5"}, {"B": "AAE="}):
        t = next(iter(value))
        got = encode_partition([KeyAttr(name="x", type=t)], [value])  # type: ignore[arg-type]
        assert got == partition_hash(value) + encode_value(value)


def test_multi_attribute_partition_golden() -> None:
    # On-disk format: md5 over tag + encoding of each attribute in order, then the encodings.
    attrs = [KeyAttr(name="a", type="S"), KeyAttr(name="b", type="N")]
    got = encode_partition(attrs, [{"S": "x"}, {"N": "1"}])
    tail = b"x\x00\x01" + b"\x03\x82\x0b\x00"
    assert got[8:] == tail
    assert got[:8] == hashlib.md5(b"Sx\x00\x01N\x03\x82\x0b\x00").digest()[:8]


def test_partition_values_do_not_run_into_each_other() -> None:
    attrs = [KeyAttr(name="a", type="S"), KeyAttr(name="b", type="S")]
    one = encode_partition(attrs, [{"S": "a"}, {"S": "bc"}])
    two = encode_partition(attrs, [{"S": "ab"}, {"S": "c"}])
    assert one != two and one[:8] != two[:8]


@given(
    st.lists(st.sampled_from(SORT_TYPES), min_size=1, max_size=4).flatmap(
        lambda types: st.tuples(
            st.just(tuple(types)),
            st.lists(st.tuples(*[sort_value(t) for t in types]), min_size=2, max_size=8),
        )
    )
)
def test_index_entries_sort_by_sort_attributes_in_sequence(case: tuple[tuple[str, ...], list[tuple[Any, ...]]]) -> None:
    types, rows = case
    ix = multi_index(types)
    entries = []
    for i, row in enumerate(rows):
        item = {"pk": {"S": f"p{i:03d}"}, "h0": {"S": "tenant"}, "h1": {"N": "42"}}
        item.update({f"s{j}": av(t, v) for j, (t, v) in enumerate(zip(types, row, strict=True))})
        entry = index_entry(TABLE, ix, item, None)
        assert entry is not None
        natural_key = tuple(natural(t, v) for t, v in zip(types, row, strict=True)) + (f"p{i:03d}",)
        entries.append((entry[0], natural_key))
    by_bytes = [k for _, k in sorted(entries, key=lambda e: e[0])]
    by_value = sorted(k for _, k in entries)
    assert by_bytes == by_value
    # One partition: every entry starts with the same index prefix, hash and partition values.
    head = index_prefix(TABLE.table_id, ix.index_id) + encode_partition(
        ix.key_schema.hash_attrs, [{"S": "tenant"}, {"N": "42"}]
    )
    assert all(e[0].startswith(head) for e in entries)


def test_item_missing_a_key_attribute_is_not_indexed() -> None:
    ix = multi_index(("S", "N"))
    full = {"pk": {"S": "p"}, "h0": {"S": "a"}, "h1": {"N": "1"}, "s0": {"S": "x"}, "s1": {"N": "2"}}
    assert index_entry(TABLE, ix, full, None) is not None
    for name in ("h0", "h1", "s0", "s1"):
        partial = {k: v for k, v in full.items() if k != name}
        assert index_entry(TABLE, ix, partial, None) is None
    assert index_entry(TABLE, ix, {**full, "s1": {"S": "2"}}, None) is None
