"""The declarative request validator: DynamoDB's texts, order and precedence."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumdb.api.spec import SPECS, validate, value_str
from quorumdb.errors import SerializationError, ValidationError


def serialization(op: str, body: Any) -> str:
    with pytest.raises(SerializationError) as e:
        validate(op, body)
    return e.value.message


def validation(op: str, body: Any) -> str:
    with pytest.raises(ValidationError) as e:
        validate(op, body)
    return e.value.message


# -- JSON type errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "NUMBER_VALUE cannot be converted to String"),
        (1.5, "DECIMAL_VALUE cannot be converted to String"),
        (True, "TRUE_VALUE cannot be converted to String"),
        (False, "FALSE_VALUE cannot be converted to String"),
        (["a"], "Unrecognized collection type class java.lang.String"),
        ({"a": 1}, "Start of structure or map found where not expected"),
    ],
)
def test_wrong_type_for_a_string(value: Any, message: str) -> None:
    assert serialization("DescribeTable", {"TableName": value}) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", "STRING_VALUE cannot be converted to Integer"),
        (True, "TRUE_VALUE cannot be converted to Integer"),
        ([1], "Unrecognized collection type class java.lang.Integer"),
        ({}, "Start of structure or map found where not expected"),
    ],
)
def test_wrong_type_for_an_integer(value: Any, message: str) -> None:
    assert serialization("ListTables", {"Limit": value}) == message


def test_wrong_type_for_a_long_names_long() -> None:
    body = {"TableName": "abc", "ProvisionedThroughput": {"ReadCapacityUnits": "x", "WriteCapacityUnits": 1}}
    assert serialization("UpdateTable", body) == "STRING_VALUE cannot be converted to Long"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (3, "NUMBER_VALUE cannot be converted to Boolean"),
        (0.5, "DECIMAL_VALUE cannot be converted to Boolean"),
        ("maybe", "Unexpected token received from parser"),
        ([True], "Unrecognized collection type class java.lang.Boolean"),
        ({}, "Start of structure or map found where not expected"),
    ],
)
def test_wrong_type_for_a_boolean(value: Any, message: str) -> None:
    assert serialization("GetItem", {"TableName": "abc", "Key": {}, "ConsistentRead": value}) == message


def test_wrong_types_for_structures_lists_and_maps() -> None:
    assert serialization("CreateTable", {"ProvisionedThroughput": "x"}) == "Unexpected field type"
    assert serialization("CreateTable", {"ProvisionedThroughput": [1]}) == (
        "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.ProvisionedThroughput"
    )
    assert serialization("CreateTable", {"KeySchema": "x"}) == "Unexpected field type"
    assert serialization("CreateTable", {"KeySchema": {"a": 1}}) == "Start of structure or map found where not expected"
    assert serialization("CreateTable", {"KeySchema": ["x"]}) == "Unexpected value type in payload"
    assert serialization("PutItem", {"Item": "x"}) == "Unexpected field type"
    assert serialization("PutItem", {"Item": []}) == (
        "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"
    )
    assert serialization("PutItem", {"Item": {"a": "x"}}) == "Unexpected value type in payload"
    assert serialization("PutItem", {"Item": {"a": []}}) == (
        "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"
    )
    assert serialization("PutItem", {"ExpressionAttributeNames": []}) == (
        "Unrecognized collection type java.util.Map<java.lang.String, java.lang.String>"
    )


def test_nested_collections_report_parameterized_types() -> None:
    assert serialization("BatchGetItem", {"RequestItems": {"abc": {"Keys": [[]]}}}) == (
        "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"
    )
    assert serialization("BatchGetItem", {"RequestItems": {"abc": {"Keys": ["x"]}}}).startswith(
        "class sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl cannot be cast"
    )
    assert serialization("BatchWriteItem", {"RequestItems": {"abc": {}}}) == (
        "Start of structure or map found where not expected"
    )


def test_body_must_be_an_object() -> None:
    assert serialization("ListTables", []) == "Start of structure or map found where not expected"
    assert serialization("ListTables", "x") == "Unexpected field type"
    assert serialization("NotAnOperationWithSpec", [1]) == "Start of structure or map found where not expected"


def test_type_errors_win_over_constraint_errors_anywhere() -> None:
    # The missing TableName comes first in member order, but a type error anywhere wins.
    body = {"Item": {}, "ReturnValues": 5}
    assert serialization("PutItem", body) == "NUMBER_VALUE cannot be converted to String"


# -- constraints -------------------------------------------------------------------------------


def test_missing_required_members_are_aggregated_in_dynamodb_order() -> None:
    assert validation("PutItem", {}) == (
        "2 validation errors detected: "
        "Value null at 'tableName' failed to satisfy constraint: Member must not be null; "
        "Value null at 'item' failed to satisfy constraint: Member must not be null"
    )


def test_single_error_is_singular() -> None:
    assert validation("GetItem", {"TableName": "abc"}) == (
        "1 validation error detected: Value null at 'key' failed to satisfy constraint: Member must not be null"
    )


def test_lengths_patterns_and_ranges() -> None:
    assert validation("ListTables", {"Limit": 2147483647, "ExclusiveStartTableName": "89hls;;f;d"}) == (
        "2 validation errors detected: "
        "Value '2147483647' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100; "
        "Value '89hls;;f;d' at 'exclusiveStartTableName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    )
    assert validation("ListTables", {"Limit": 0, "ExclusiveStartTableName": "ab"}) == (
        "2 validation errors detected: "
        "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1; "
        "Value 'ab' at 'exclusiveStartTableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3"
    )


def test_enum_values_are_listed_in_dynamodb_order() -> None:
    msg = validation("PutItem", {"TableName": "abc", "Item": {}, "ReturnConsumedCapacity": "ALL"})
    assert msg == (
        "1 validation error detected: Value 'ALL' at 'returnConsumedCapacity' failed to satisfy constraint: "
        "Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
    )


def test_nested_locations_use_member_paths() -> None:
    body = {
        "TableName": "abc",
        "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "X"}],
        "KeySchema": [{"KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    assert validation("CreateTable", body) == (
        "2 validation errors detected: "
        "Value 'X' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [B, N, S]; "
        "Value null at 'keySchema.1.member.attributeName' failed to satisfy constraint: Member must not be null"
    )
    body = {"TableName": "abc", "KeyConditions": {"h": {"ComparisonOperator": "NOPE"}}}
    assert validation("Query", body) == (
        "1 validation error detected: Value 'NOPE' at 'keyConditions.h.member.comparisonOperator' failed to satisfy "
        "constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, "
        "NE, LE, BEGINS_WITH, GE, CONTAINS]"
    )


def test_list_length_message_shows_the_list() -> None:
    ks = [{"AttributeName": n, "KeyType": "HASH"} for n in "abc"]
    msg = validation("CreateTable", {"TableName": "abc", "AttributeDefinitions": [], "KeySchema": ks})
    assert msg.startswith("1 validation error detected: Value '[")
    assert msg.endswith("]' at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2")


def test_map_key_and_value_constraints() -> None:
    msg = validation("BatchWriteItem", {"RequestItems": {"ab": [{"DeleteRequest": {"Key": {}}}]}})
    assert msg.startswith("1 validation error detected: Value '{")
    assert msg.endswith(
        "at 'requestItems' failed to satisfy constraint: Map keys must satisfy constraint: "
        "[Member must have length less than or equal to 255, Member must have length greater than or equal to 3, "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]"
    )
    msg = validation("BatchWriteItem", {"RequestItems": {"abc": []}})
    assert msg.endswith(
        "Map value must satisfy constraint: [Member must have length less than or equal to 25, "
        "Member must have length greater than or equal to 1]"
    )


def test_at_most_ten_errors_are_reported() -> None:
    ks = [{} for _ in range(2)]
    defs = [{} for _ in range(6)]
    msg = validation("CreateTable", {"TableName": "abc", "AttributeDefinitions": defs, "KeySchema": ks})
    assert msg.startswith("10 validation errors detected: ")
    assert msg.count("failed to satisfy constraint") == 10


def test_control_plane_table_name_is_checked_first() -> None:
    assert validation("CreateTable", {}) == "The parameter 'TableName' is required but was not present in the request"
    assert validation("DescribeTable", {"TableName": "ab"}) == (
        "TableName must be at least 3 characters long and at most 255 characters long"
    )
    assert validation("DeleteTable", {"TableName": "a" * 256}) == (
        "TableName must be at least 3 characters long and at most 255 characters long"
    )
    assert validation("DescribeTable", {"TableName": "a;b"}) == (
        "1 validation error detected: Value 'a;b' at 'tableName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    )
    # Data-plane operations aggregate the table name with everything else.
    assert validation("GetItem", {"TableName": "ab", "Key": {}}) == (
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3"
    )


# -- normalization -------------------------------------------------------------------------------


def test_nulls_are_absent_and_unknown_members_ignored() -> None:
    body = {"TableName": "abc", "Key": {"k": {"S": "v"}}, "ProjectionExpression": None, "Whatever": [1]}
    out = validate("GetItem", body)
    assert "ProjectionExpression" not in out
    assert out["Whatever"] == [1]
    assert validation("GetItem", {"TableName": "abc", "Key": None}).endswith("Member must not be null")


def test_scalars_are_coerced_like_dynamodb() -> None:
    out = validate("Query", {"TableName": "abc", "ConsistentRead": "yes", "ScanIndexForward": "0", "Limit": 2.7})
    assert out["ConsistentRead"] is True
    assert out["ScanIndexForward"] is False
    assert out["Limit"] == 2


def test_valid_requests_pass_untouched() -> None:
    body = {
        "TableName": "Music",
        "Item": {"Artist": {"S": "x"}, "n": {"N": "1"}},
        "ConditionExpression": "attribute_not_exists(Artist)",
        "ReturnValues": "ALL_OLD",
    }
    assert validate("PutItem", dict(body)) == body


def test_every_served_operation_has_a_spec() -> None:
    for op in ("CreateTable", "UpdateTable", "PutItem", "Query", "TransactWriteItems", "UpdateTimeToLive"):
        assert op in SPECS


def test_value_str() -> None:
    assert value_str(None) == "null"
    assert value_str([1, "a", [True]]) == "[1, a, [true]]"
    assert value_str({"a": 1}) == '{"a":1}'
    assert value_str(2.0) == "2"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    op=st.sampled_from(sorted(SPECS)),
    body=st.dictionaries(
        st.sampled_from(
            ["TableName", "Key", "Item", "Limit", "KeySchema", "RequestItems", "TransactItems",
             "GlobalSecondaryIndexUpdates", "ProvisionedThroughput", "Tags", "ExpressionAttributeNames"]
        ),
        json_values,
        max_size=4,
    ),
)
def test_arbitrary_json_only_raises_dynamodb_errors(op: str, body: dict[str, Any]) -> None:
    try:
        validate(op, body)
    except (SerializationError, ValidationError) as e:
        assert e.message


def _outcome(spec: Any, body: dict[str, Any]) -> tuple[str, Any]:
    try:
        return ("ok", spec.validate(body))
    except (SerializationError, ValidationError) as e:
        return (e.type_name, e.message)


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from(sorted(SPECS)),
    body=st.dictionaries(
        st.sampled_from(
            ["TableName", "Key", "Item", "Limit", "ReturnValues", "ConsistentRead", "KeySchema",
             "AttributeDefinitions", "ExpressionAttributeNames", "Select", "ReturnConsumedCapacity"]
        ),
        json_values,
        max_size=5,
    ),
)
def test_fast_path_agrees_with_the_ordered_walk(op: str, body: dict[str, Any]) -> None:
    import copy

    from quorumdb.api.spec import OperationSpec, compile_spec

    fast = SPECS[op]
    slow = OperationSpec.__new__(OperationSpec)
    slow.name, slow.table_name_first = fast.name, fast.table_name_first
    slow.body = compile_spec({"ops": {op: {"body": _raw_body(op)}}})[op].body
    slow.body.fast = False
    assert _outcome(fast, copy.deepcopy(body)) == _outcome(slow, copy.deepcopy(body))


def _raw_body(op: str) -> dict[str, Any]:
    from importlib import resources

    import orjson

    doc = orjson.loads(resources.files("quorumdb.api").joinpath("shapes.json").read_bytes())
    body: dict[str, Any] = doc["ops"][op]["body"]
    return body


@pytest.mark.parametrize("service,filename", [("dynamodb", "shapes.json"), ("dynamodbstreams", "streams_shapes.json")])
def test_committed_shapes_match_the_generator(service: str, filename: str) -> None:
    import importlib.util
    from importlib import resources
    from pathlib import Path

    import orjson

    pytest.importorskip("botocore")
    path = Path(__file__).resolve().parents[2] / "tools" / "gen_shapes.py"
    mod_spec = importlib.util.spec_from_file_location("gen_shapes", path)
    assert mod_spec is not None and mod_spec.loader is not None
    gen = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(gen)
    committed = orjson.loads(resources.files("quorumdb.api").joinpath(filename).read_bytes())
    fresh = gen.build_doc() if service == "dynamodb" else gen.build_doc(service, gen.STREAMS_OPERATIONS)
    assert fresh["ops"] == committed["ops"], f"run tools/gen_shapes.py and commit quorumdb/api/{filename}"


# -- JSON type errors inside attribute values come before every ValidationException ------------


@pytest.mark.parametrize(
    "req",
    [
        {"TableName": "ab", "Item": {"a": {"S": 5}}},
        {"Item": {"a": {"S": "x"}, "b": {"L": [{"N": True}]}}},
        {"TableName": "abc", "Item": {"a": {"S": 5}}, "ReturnValues": "NOPE"},
        {"TableName": "abc", "Item": {"a": {"S": "x"}}, "Expected": {"a": {"Value": {"S": 3}}}, "ReturnValues": "NOPE"},
        # the handler's rule (values without an expression) is checked before the item's values
        {"TableName": "abc", "Item": {"a": {"S": "x"}}, "ExpressionAttributeValues": {":a": {"S": 1}}},
    ],
)
def test_attribute_value_type_errors_beat_validation_errors(req: dict[str, object]) -> None:
    from test_server_fakes import CatalogDataPlane, error_of

    typ, message = error_of(CatalogDataPlane(), "PutItem", req)
    assert typ == "SerializationException"
    assert message in ("NUMBER_VALUE cannot be converted to String", "TRUE_VALUE cannot be converted to String")


def test_valid_attribute_values_still_report_the_validation_error() -> None:
    from test_server_fakes import CatalogDataPlane, error_of

    typ, message = error_of(CatalogDataPlane(), "PutItem", {"TableName": "abc", "Item": {"a": {"S": "x"}},
                                                            "ReturnValues": "NOPE"})
    assert typ == "ValidationException" and "at 'returnValues' failed to satisfy constraint" in message


def test_check_types_walks_into_attribute_values_only_when_asked() -> None:
    spec = SPECS["PutItem"]
    spec.check_types({"TableName": "abc", "Item": {"a": {"S": "x"}}})
    with pytest.raises(SerializationError, match="NUMBER_VALUE cannot be converted to String"):
        spec.check_types({"TableName": "abc", "Item": {"a": {"M": {"b": {"S": 1}}}}})
    # validate() alone leaves the values to the handler when nothing else is wrong.
    assert spec.validate({"TableName": "abc", "Item": {"a": {"S": 1}}})


def test_a_request_nested_past_the_recursion_limit_is_a_400() -> None:
    import asyncio
    import sys

    import orjson
    from test_server_fakes import CatalogDataPlane

    from quorumdb.api.dispatch import Dispatcher

    # 505 levels of M (1012 of JSON, under orjson's 1024) need more frames than Python's
    # default limit of 1000; a server raises the limit, an in-process dispatcher may not.
    assert sys.getrecursionlimit() < 1500
    value = '{"S": "x"}'
    for _ in range(505):
        value = '{"M": {"a": ' + value + "}}"
    body = ('{"TableName": "ab", "Item": {"a": ' + value + "}}").encode()
    status, out = asyncio.run(Dispatcher(CatalogDataPlane()).handle(b"DynamoDB_20120810.PutItem", body, "rid"))
    assert status == 400
    assert orjson.loads(out) == {
        "__type": "com.amazon.coral.validate#ValidationException",
        "message": "Nesting Levels have exceeded supported limits",
    }
