"""ProjectionExpression / AttributesToGet application."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from quorumdb.errors import ValidationError
from quorumdb.expr import ExpressionContext, project_paths
from quorumdb.expr.legacy import attributes_to_get

ITEM: dict[str, Any] = {
    "a": {"S": "A"},
    "b": {"M": {"c": {"N": "1"}, "d": {"L": [{"S": "d0"}, {"S": "d1"}, {"M": {"e": {"S": "E"}, "f": {"S": "F"}}}]}}},
    "l": {"L": [{"N": "0"}, {"L": [{"N": "10"}, {"N": "11"}, {"N": "12"}]}, {"N": "2"}, {"N": "3"}]},
    "odd name": {"BOOL": True},
}

CASES: list[tuple[str, dict[str, Any]]] = [
    ("a", {"a": {"S": "A"}}),
    ("a, absent", {"a": {"S": "A"}}),
    ("absent", {}),
    ("b.c", {"b": {"M": {"c": {"N": "1"}}}}),
    ("b.c, a", {"b": {"M": {"c": {"N": "1"}}}, "a": {"S": "A"}}),
    ("b.d[1]", {"b": {"M": {"d": {"L": [{"S": "d1"}]}}}}),
    ("b.d[2].f", {"b": {"M": {"d": {"L": [{"M": {"f": {"S": "F"}}}]}}}}),
    ("b.d[2].f, b.d[0]", {"b": {"M": {"d": {"L": [{"S": "d0"}, {"M": {"f": {"S": "F"}}}]}}}}),
    ("l[3], l[1][2], l[0]", {"l": {"L": [{"N": "0"}, {"L": [{"N": "12"}]}, {"N": "3"}]}}),
    ("l[9]", {}),
    ("b.absent, b.c", {"b": {"M": {"c": {"N": "1"}}}}),
    ("a.x, l.y, b[0]", {}),
    ("#n", {"odd name": {"BOOL": True}}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_projection(text: str, expected: dict[str, Any]) -> None:
    names = {"#n": "odd name"} if "#n" in text else None
    before = copy.deepcopy(ITEM)
    proj = ExpressionContext(names, None).projection(text)
    assert proj.apply(ITEM) == expected
    assert ITEM == before


def test_project_paths_direct() -> None:
    assert project_paths(ITEM, [("b", "c"), ("a",)]) == {"b": {"M": {"c": {"N": "1"}}}, "a": {"S": "A"}}
    assert project_paths({}, [("a",)]) == {}


def test_attributes_to_get() -> None:
    proj = attributes_to_get(["a", "odd name", "absent"])
    assert proj.apply(ITEM) == {"a": {"S": "A"}, "odd name": {"BOOL": True}}
    assert proj.top_level_names == ("a", "odd name", "absent")


def test_attributes_to_get_duplicates() -> None:
    with pytest.raises(ValidationError) as exc:
        attributes_to_get(["a", "b", "a"])
    assert exc.value.message == "One or more parameter values were invalid: Duplicate value in attribute name: a"
