"""Regressions for bugs real clients found (issue 9), black-box through boto3."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import TableFactory, expect_error

KEY_MISMATCH = "The provided key element does not match the schema"


# -- BatchGetItem with keys that cannot be keys -----------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"SS": ["a", "b"]},
        {"NS": ["1"]},
        {"L": [{"S": "a"}]},
        {"M": {"x": {"S": "a"}}},
        {"BOOL": True},
        {"NULL": True},
    ],
)
def test_batch_get_with_a_non_scalar_key_value_is_a_validation_error(
    ddb: Any, make_table: TableFactory, bad: dict[str, Any]
) -> None:
    table = make_table()
    with expect_error("ValidationException", KEY_MISMATCH):
        ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": bad}]}})
    # The duplicate check (before the schema check) copes with such values too.
    with expect_error("ValidationException", KEY_MISMATCH):
        ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": {"S": "ok"}}, {"pk": bad}, {"pk": {"L": []}}]}})
    with expect_error("ValidationException", "Provided list of item keys contains duplicates"):
        ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": bad}, {"pk": bad}]}})


# -- expressions nested too deeply --------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "text"),
    [
        ("ConditionExpression", "NOT " * 1000 + "a = :v"),
        ("ConditionExpression", "(" * 1000 + "a = :v" + ")" * 1000),
        ("ConditionExpression", "a = :v AND (" * 300 + "a = :v" + ")" * 300),
    ],
)
def test_deeply_nested_condition_is_a_validation_error(
    ddb: Any, make_table: TableFactory, param: str, text: str
) -> None:
    table = make_table()
    with expect_error("ValidationException", f"Invalid {param}: The expression is nested too deeply"):
        ddb.put_item(
            TableName=table, Item={"pk": {"S": "k"}}, ConditionExpression=text,
            ExpressionAttributeValues={":v": {"S": "x"}},
        )
    with expect_error("ValidationException", "Invalid FilterExpression: The expression is nested too deeply"):
        ddb.scan(TableName=table, FilterExpression=text, ExpressionAttributeValues={":v": {"S": "x"}})


def test_deeply_nested_update_is_a_validation_error(ddb: Any, make_table: TableFactory) -> None:
    table = make_table()
    with expect_error("ValidationException", "Invalid UpdateExpression: The expression is nested too deeply"):
        ddb.update_item(
            TableName=table, Key={"pk": {"S": "k"}},
            UpdateExpression="SET a = " + "(" * 1000 + ":v" + ")" * 1000,
            ExpressionAttributeValues={":v": {"S": "x"}},
        )
