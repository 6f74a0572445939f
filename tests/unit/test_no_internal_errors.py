"""No request may make the server answer HTTP 500: requests of every served operation,
generated from botocore's model of DynamoDB's shapes (with wrong JSON types, malformed attribute
values, nonsense and valid expressions mixed in), go through the real dispatcher over an
in-memory data plane that holds a few tables and items. Every answer must be a 200 or a
DynamoDB client error (4xx), never InternalServerError.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import botocore.session
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from quorumdb.api.dispatch import TARGET_PREFIX, Dispatcher
from quorumdb.api.registry import OPERATIONS
from quorumdb.db import LocalDataPlane, open_local

_MODEL = botocore.session.get_session().get_service_model("dynamodb")
_OPERATIONS = sorted(n for n in OPERATIONS if n in _MODEL.operation_names)

TABLES = ("t_h", "t_hr", "t_ix")
NAMES = ("pk", "sk", "a", "b", "g", "l", "m", "#n", "")
_ENV: dict[str, Any] = {}

# -- attribute values, valid and not -----------------------------------------------------------

_numbers = st.sampled_from(["0", "1", "-1.5", "1e10", "9" * 39, "1e126", "1e-131", "abc", "", " 1", "NaN", "0x10"])
_strings = st.sampled_from(["", "x", "p", "é" * 3, "\x00", "s" * 1100, "h" * 2100])
_binaries = st.sampled_from(["", "AA==", base64.b64encode(b"q").decode(), "not base64!", "A"])
_scalar_av = st.one_of(
    st.builds(lambda v: {"S": v}, _strings),
    st.builds(lambda v: {"N": v}, _numbers),
    st.builds(lambda v: {"B": v}, _binaries),
    st.builds(lambda v: {"BOOL": v}, st.sampled_from([True, False, "true", 1])),
    st.builds(lambda v: {"NULL": v}, st.sampled_from([True, False, None])),
    st.builds(lambda v: {"SS": v}, st.lists(_strings, max_size=3)),
    st.builds(lambda v: {"NS": v}, st.lists(_numbers, max_size=3)),
    st.builds(lambda v: {"BS": v}, st.lists(_binaries, max_size=3)),
    st.sampled_from([{}, {"S": "a", "N": "1"}, {"X": "1"}, {"S": 1}, {"L": "x"}, {"M": []}, [], "x", 1, None]),
)
attribute_values = st.recursive(
    _scalar_av,
    lambda inner: st.one_of(
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
        st.builds(lambda v: {"M": v}, st.dictionaries(st.sampled_from(NAMES), inner, max_size=3)),
    ),
    max_leaves=6,
)
_good_av = st.sampled_from([{"S": "p"}, {"S": "q"}, {"N": "1"}, {"N": "2"}, {"L": [{"N": "1"}]}, {"SS": ["x"]}])
av_maps = st.dictionaries(st.sampled_from(NAMES), st.one_of(_good_av, attribute_values), max_size=4)

# -- expressions: valid ones, and token soup ------------------------------------------------------

_VALID_EXPRESSIONS = [
    "pk = :v", "pk = :v AND sk > :w", "attribute_exists(a)", "NOT a IN (:v, :w)", "size(l) < :v",
    "a.b[1] BETWEEN :v AND :w", "begins_with(#n, :v)", "contains(l, :v) OR attribute_type(a, :v)",
    "SET a = :v", "SET l[5] = :v, l[2] = :w", "SET a = list_append(l, :v)", "SET #n = if_not_exists(a, :v) + :w",
    "REMOVE a, l[0]", "ADD a :v", "DELETE a :v", "SET a = a - :v REMOVE b", "a, l[0], m.x", "#n.b",
]
_TOKENS = [
    "a", "pk", "sk", "#n", "#x", ":v", ":w", ":x", "=", "<>", "<", ">=", "AND", "OR", "NOT", "(", ")",
    "size(", "begins_with(", "list_append(", "if_not_exists(", ",", "SET", "REMOVE", "ADD", "DELETE",
    "[0]", "[99]", ".b", "BETWEEN", "IN", "+", "-", "l", "m",
]
expressions = st.one_of(
    st.sampled_from(_VALID_EXPRESSIONS),
    st.lists(st.sampled_from(_TOKENS), max_size=12).map(" ".join),
    st.sampled_from([5, 120, 1000]).map(lambda n: "NOT " * n + "a = :v"),
    st.sampled_from([5, 120, 1000]).map(lambda n: "(" * n + "a = :v" + ")" * n),
    st.sampled_from([5, 120, 300]).map(lambda n: "SET a = " + "list_append(" * n + "l" + ", l)" * n),
    st.text(max_size=20),
)
expression_names = st.dictionaries(
    st.sampled_from(["#n", "#x", "n", "#"]), st.sampled_from(["a", "pk", "sk", "l", ""]), min_size=1, max_size=3
)
expression_values = st.dictionaries(st.sampled_from([":v", ":w", ":x", "v"]), st.one_of(_good_av, attribute_values), min_size=1, max_size=3)

# -- any shape of the model --------------------------------------------------------------------

_EXPRESSION_MEMBERS = {
    "ConditionExpression", "FilterExpression", "KeyConditionExpression", "UpdateExpression", "ProjectionExpression",
}
_junk = st.sampled_from([None, 1, -1, 1.5, "x", True, [], {}, [1], {"a": 1}])


def _string_for(member: str, shape: Any, valid: bool) -> st.SearchStrategy[Any]:
    if member in _EXPRESSION_MEMBERS:
        return expressions
    if member in ("TableName", "IndexName", "ExclusiveStartTableName"):
        if valid:
            return st.sampled_from([*TABLES, "by_g", "by_a"])
        return st.sampled_from([*TABLES, "by_g", "by_a", "missing", "", "x" * 300])
    if member in ("ResourceArn", "TableArn"):
        return st.sampled_from([f"arn:aws:dynamodb:us-east-1:000000000000:table/{t}" for t in TABLES] + ["arn:x", ""])
    if member == "AttributeName" or member == "AttributeType":
        return st.sampled_from([*NAMES, "S", "N", "B", "SS"])
    if shape.enum:
        return st.sampled_from(list(shape.enum) if valid else [*shape.enum, "", "nonsense"])
    return st.sampled_from(["x", "pk", "tok" * 12] if valid else ["", "x", "pk", "tok" * 12, "0", "é"])


def _strategy(shape: Any, member: str, depth: int, valid: bool) -> st.SearchStrategy[Any]:
    """Requests of ``shape``; with ``valid``, every member passes the declarative spec (most
    then reach the handler), else members may break any constraint."""
    name = shape.name
    if name == "AttributeValue":
        return st.one_of(_good_av, attribute_values) if valid else attribute_values
    if name in ("Key", "AttributeMap", "PutItemInputAttributeMap"):
        return av_maps
    if member == "ExpressionAttributeNames":
        return expression_names
    if member == "ExpressionAttributeValues":
        return expression_values
    t = shape.type_name
    if t == "structure":
        if depth > 4:
            return st.just({})
        members = {k: _strategy(v, k, depth + 1, valid) for k, v in shape.members.items()}
        required = [k for k in shape.required_members if k in members]
        optional = [k for k in members if k not in required]
        if not optional:
            return st.fixed_dictionaries({k: members[k] for k in required})
        # Every required member (so that requests get past the spec), some optional ones.
        return st.lists(st.sampled_from(optional), unique=True, max_size=min(len(optional), 4 if valid else 6)).flatmap(
            lambda chosen: st.fixed_dictionaries({k: members[k] for k in required + chosen})
        )
    if t == "list":
        return st.lists(_strategy(shape.member, member, depth + 1, valid), min_size=1, max_size=3 if depth < 4 else 1)
    if t == "map":
        keys = st.sampled_from(TABLES if shape.key.name in ("TableName", "TableArn") else NAMES)
        return st.dictionaries(keys, _strategy(shape.value, member, depth + 1, valid), min_size=1, max_size=3)
    if t == "string":
        return _string_for(member, shape, valid)
    if t in ("integer", "long"):
        return st.sampled_from([1, 5, 100] if valid else [0, 1, 5, 100, -1, 2**31, 2**63, 10**30])
    if t == "boolean":
        return st.booleans()
    if t in ("double", "float"):
        return st.sampled_from([0.0, 1.5, -1.0, 1e308])
    if t == "timestamp":
        return st.sampled_from([0, 1.5, 1_700_000_000, -5, "2020-01-01T00:00:00Z"])
    return st.sampled_from(["", "AAAA"])


_REQUESTS = {
    (op, valid): _strategy(_MODEL.operation_model(op).input_shape, op, 0, valid)
    for op in _OPERATIONS
    for valid in (True, False)
}


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, Any]:
    op = draw(st.sampled_from(_OPERATIONS))
    valid = draw(st.integers(0, 2)) > 0
    body = draw(_REQUESTS[op, valid])
    if not valid and draw(st.booleans()) and body:  # one member of a wrong JSON type
        key = draw(st.sampled_from(sorted(body)))
        body[key] = draw(_junk)
    return op, body


# -- the world the requests run against ------------------------------------------------------------

_CREATE = [
    {"TableName": "t_h", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
     "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}], "BillingMode": "PAY_PER_REQUEST"},
    {"TableName": "t_hr", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
     "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
     "BillingMode": "PAY_PER_REQUEST"},
    {"TableName": "t_ix", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
     "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"},
                              {"AttributeName": "g", "AttributeType": "S"}, {"AttributeName": "a", "AttributeType": "N"}],
     "BillingMode": "PAY_PER_REQUEST",
     "GlobalSecondaryIndexes": [{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
     "LocalSecondaryIndexes": [{"IndexName": "by_a", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                                  {"AttributeName": "a", "KeyType": "RANGE"}],
                                "Projection": {"ProjectionType": "KEYS_ONLY"}}]},
]
_ITEMS = [
    ("t_h", {"pk": {"S": "p"}, "a": {"N": "1"}, "l": {"L": [{"N": "1"}, {"S": "x"}]}, "m": {"M": {"b": {"SS": ["x"]}}}}),
    ("t_hr", {"pk": {"S": "p"}, "sk": {"N": "1"}, "a": {"S": "x"}}),
    ("t_hr", {"pk": {"S": "p"}, "sk": {"N": "2"}, "l": {"L": []}}),
    ("t_ix", {"pk": {"S": "p"}, "sk": {"N": "1"}, "g": {"S": "G"}, "a": {"N": "3"}}),
]


def _call(op: str, body: Any) -> tuple[int, bytes]:
    dispatcher: Dispatcher = _ENV["dispatcher"]
    loop: asyncio.AbstractEventLoop = _ENV["loop"]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return loop.run_until_complete(dispatcher.handle(f"{TARGET_PREFIX}{op}".encode(), raw, "fuzz"))


def _restore_world() -> None:
    """(Re)create the tables and items a previous example may have deleted or changed."""
    db: LocalDataPlane = _ENV["db"]
    present = set(db.table_names())
    for spec in _CREATE:
        if spec["TableName"] not in present:
            _call("CreateTable", spec)
    for table, item in _ITEMS:
        _call("PutItem", {"TableName": table, "Item": item})


@pytest.fixture(scope="module", autouse=True)
def world() -> Any:
    loop = asyncio.new_event_loop()
    db = open_local(None, background=False)
    loop.run_until_complete(db.start())
    _ENV.update(loop=loop, db=db, dispatcher=Dispatcher(db, clock=lambda: 1_700_000_000.0))
    _restore_world()
    yield
    loop.run_until_complete(db.close())
    loop.close()
    _ENV.clear()


_SETTINGS = settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@_SETTINGS
@given(request=requests())
@example(request=("BatchGetItem", {"RequestItems": {"t_h": {"Keys": [{"pk": {"SS": ["a"]}}, {"pk": {"L": []}}]}}}))
@example(request=("Scan", {"TableName": "t_h", "FilterExpression": "NOT " * 1000 + "a = :v",
                           "ExpressionAttributeValues": {":v": {"S": "x"}}}))
def test_no_request_is_answered_with_an_internal_error(request: tuple[str, Any]) -> None:
    op, body = request
    _restore_world()
    status, out = _call(op, body)
    assert status < 500, (op, body, out)
    if status != 200:
        assert b"InternalServerError" not in out


@settings(max_examples=200, deadline=None)
@given(body=st.one_of(st.binary(max_size=40), _junk.map(orjson.dumps), st.just(b'{"TableName": "t_h"' + b"[" * 2000)))
def test_no_body_is_answered_with_an_internal_error(body: bytes) -> None:
    for op in ("GetItem", "Query", "CreateTable"):
        status, out = _call(op, body)
        assert status < 500, (op, body, out)
