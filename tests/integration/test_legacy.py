"""DynamoDB's legacy (pre-expression) parameters through boto3: Expected, ConditionalOperator,
AttributeUpdates and AttributesToGet, with their validation messages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.helpers import TableFactory, expect_error


@pytest.fixture(scope="module")
def table(module_tables: TableFactory) -> str:
    return module_tables(("pk", "S"))


def fresh(ddb: Any, table: str, **attrs: Any) -> dict[str, Any]:
    key = {"pk": {"S": uuid.uuid4().hex}}
    ddb.put_item(TableName=table, Item={**key, **attrs})
    return key


def test_expected_exists_and_value(ddb: Any, table: str) -> None:
    key = {"pk": {"S": uuid.uuid4().hex}}
    ddb.put_item(TableName=table, Item={**key, "v": {"N": "1"}}, Expected={"pk": {"Exists": False}})
    with expect_error("ConditionalCheckFailedException", "The conditional request failed"):
        ddb.put_item(TableName=table, Item=key, Expected={"pk": {"Exists": False}})
    ddb.put_item(TableName=table, Item={**key, "v": {"N": "2"}}, Expected={"v": {"Value": {"N": "1"}}})
    ddb.put_item(TableName=table, Item={**key, "v": {"N": "3"}}, Expected={"v": {"Exists": True, "Value": {"N": "2"}}})
    with expect_error("ConditionalCheckFailedException", "The conditional request failed"):
        ddb.delete_item(TableName=table, Key=key, Expected={"v": {"Value": {"N": "2"}}})
    assert ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["v"] == {"N": "3"}


@pytest.mark.parametrize(
    ("expected", "operator", "holds"),
    [
        ({"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "5"}]}}, None, True),
        ({"n": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "5"}]}}, None, False),
        ({"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "10"}]}}, None, True),
        ({"n": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "1"}, {"N": "10"}]}}, None, True),
        ({"s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "hel"}]}}, None, True),
        ({"s": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "ll"}]}}, None, True),
        ({"ss": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "a"}]}}, None, True),
        ({"ss": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "a"}]}}, None, False),
        ({"zz": {"ComparisonOperator": "NULL"}}, None, True),
        ({"n": {"ComparisonOperator": "NOT_NULL"}}, None, True),
        ({"n": {"ComparisonOperator": "NE", "AttributeValueList": [{"N": "10"}]}}, None, False),
        ({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "10"}]},
          "s": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "nope"}]}}, "AND", False),
        ({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "10"}]},
          "s": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "nope"}]}}, "OR", True),
        # dynalite deviates: it ends an OR at the first condition that fails.
        ({"n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]},
          "s": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "hello"}]}}, "OR", True),
    ],
)
def test_expected_comparison_operators(
    ddb: Any, table: str, expected: dict[str, Any], operator: str | None, holds: bool
) -> None:
    attrs = {"n": {"N": "10"}, "s": {"S": "hello"}, "ss": {"SS": ["a", "b"]}}
    key = fresh(ddb, table, **attrs)
    kwargs: dict[str, Any] = {"Expected": expected}
    if operator:
        kwargs["ConditionalOperator"] = operator
    if holds:
        ddb.put_item(TableName=table, Item={**key, **attrs, "ok": {"BOOL": True}}, **kwargs)
        assert ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["ok"] == {"BOOL": True}
    else:
        with expect_error("ConditionalCheckFailedException", "The conditional request failed"):
            ddb.put_item(TableName=table, Item={**key, **attrs, "ok": {"BOOL": True}}, **kwargs)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"v": {}}, "One or more parameter values were invalid: Value must be provided when Exists is null for Attribute: v"),
        ({"v": {"Exists": True}}, "Value must be provided when Exists is true for Attribute: v"),
        ({"v": {"Exists": False, "Value": {"S": "x"}}}, "Value cannot be used when Exists is false for Attribute: v"),
        ({"v": {"ComparisonOperator": "EQ"}},
         "Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: v"),
        ({"v": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}]}},
         "Invalid number of argument(s) for the BETWEEN ComparisonOperator"),
        ({"v": {"ComparisonOperator": "EQ", "Exists": True, "Value": {"S": "x"}}},
         "Exists and ComparisonOperator cannot be used together for Attribute: v"),
        ({"v": {"AttributeValueList": [{"S": "x"}]}},
         "AttributeValueList can only be used with a ComparisonOperator for Attribute: v"),
    ],
)
def test_expected_validation(ddb: Any, table: str, expected: dict[str, Any], message: str) -> None:
    with expect_error("ValidationException", message):
        ddb.put_item(TableName=table, Item={"pk": {"S": "legacy-errors"}}, Expected=expected)


def test_attribute_updates(ddb: Any, table: str) -> None:
    key = fresh(ddb, table, n={"N": "1"}, ss={"SS": ["a", "b"]}, gone={"S": "x"}, l={"L": [{"S": "a"}]})
    out = ddb.update_item(
        TableName=table, Key=key, ReturnValues="ALL_NEW",
        AttributeUpdates={
            "n": {"Action": "ADD", "Value": {"N": "5"}},
            "ss": {"Action": "DELETE", "Value": {"SS": ["a"]}},
            "gone": {"Action": "DELETE"},
            "new": {"Action": "PUT", "Value": {"S": "put"}},
            "dflt": {"Value": {"N": "7"}},
            "cnt": {"Action": "ADD", "Value": {"N": "2"}},
            "l": {"Action": "ADD", "Value": {"L": [{"S": "b"}]}},
        },
    )["Attributes"]
    assert out == {
        **key, "n": {"N": "6"}, "ss": {"SS": ["b"]}, "new": {"S": "put"}, "dflt": {"N": "7"}, "cnt": {"N": "2"},
        "l": {"L": [{"S": "a"}, {"S": "b"}]},
    }
    with expect_error("ValidationException", "Cannot update attribute pk. This attribute is part of the key"):
        ddb.update_item(TableName=table, Key=key, AttributeUpdates={"pk": {"Action": "PUT", "Value": {"S": "x"}}})
    with expect_error("ValidationException", "Only DELETE action is allowed when no attribute value is specified"):
        ddb.update_item(TableName=table, Key=key, AttributeUpdates={"x": {"Action": "PUT"}})
    with expect_error("ValidationException", "DELETE action with value is not supported for the type S"):
        ddb.update_item(TableName=table, Key=key, AttributeUpdates={"x": {"Action": "DELETE", "Value": {"S": "v"}}})
    with expect_error("ValidationException", "ADD action is not supported for the type S"):
        ddb.update_item(TableName=table, Key=key, AttributeUpdates={"x": {"Action": "ADD", "Value": {"S": "v"}}})
    with expect_error("ValidationException", "Type mismatch for attribute to update"):
        ddb.update_item(TableName=table, Key=key, AttributeUpdates={"new": {"Action": "ADD", "Value": {"N": "1"}}})
    with expect_error(
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributeUpdates} Expression parameters: {UpdateExpression}",
    ):
        ddb.update_item(
            TableName=table, Key=key, UpdateExpression="SET a = :v", ExpressionAttributeValues={":v": {"S": "v"}},
            AttributeUpdates={"x": {"Action": "PUT", "Value": {"S": "v"}}},
        )


def test_attribute_updates_with_expected_and_return_values(ddb: Any, table: str) -> None:
    key = fresh(ddb, table, v={"N": "1"}, other={"S": "o"})
    out = ddb.update_item(
        TableName=table, Key=key, AttributeUpdates={"v": {"Action": "PUT", "Value": {"N": "2"}}},
        Expected={"v": {"Value": {"N": "1"}}}, ReturnValues="UPDATED_OLD",
    )
    assert out["Attributes"] == {"v": {"N": "1"}}
    with expect_error("ConditionalCheckFailedException", "The conditional request failed"):
        ddb.update_item(
            TableName=table, Key=key, AttributeUpdates={"v": {"Action": "PUT", "Value": {"N": "3"}}},
            Expected={"v": {"Value": {"N": "1"}}},
        )


def test_attributes_to_get(ddb: Any, table: str) -> None:
    key = fresh(ddb, table, a={"S": "1"}, b={"S": "2"}, c={"S": "3"})
    got = ddb.get_item(TableName=table, Key=key, AttributesToGet=["a", "c", "zz"])["Item"]
    assert got == {"a": {"S": "1"}, "c": {"S": "3"}}
    with expect_error("ValidationException", "One or more parameter values were invalid: Duplicate value in attribute name: a"):
        ddb.get_item(TableName=table, Key=key, AttributesToGet=["a", "a"])
    with expect_error(
        "ValidationException",
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
    ):
        ddb.get_item(TableName=table, Key=key, AttributesToGet=["a"], ProjectionExpression="b")
