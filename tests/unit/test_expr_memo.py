"""The per-process memo of resolved expressions returns what a fresh resolution would."""

from __future__ import annotations

import pytest

from quorumdb.errors import ValidationError
from quorumdb.expr import ExpressionContext


def _ctx(names: dict[str, str] | None, values: dict[str, object] | None) -> ExpressionContext:
    return ExpressionContext(names, values)


def test_repeated_request_reuses_result_and_still_reports_unused() -> None:
    for _ in range(3):
        ec = _ctx({"#a": "x", "#b": "y"}, {":v": {"N": "01"}})
        cond = ec.condition("#a = :v")
        assert cond.evaluate({"x": {"N": "1"}})
        with pytest.raises(ValidationError, match=r"ExpressionAttributeNames unused.*#b"):
            ec.check_unused()


def test_same_text_different_values_differ() -> None:
    c1 = _ctx(None, {":v": {"N": "1"}}).condition("a = :v")
    c2 = _ctx(None, {":v": {"N": "2"}}).condition("a = :v")
    assert c1.evaluate({"a": {"N": "1"}}) and not c2.evaluate({"a": {"N": "1"}})


def test_placeholders_used_by_a_cached_expression_count_as_used() -> None:
    for _ in range(2):
        ec = _ctx({"#c": "counter"}, {":one": {"N": "1"}, ":z": {"N": "0"}})
        up = ec.update("ADD #c :one")
        ec.condition("attribute_not_exists(#c) OR #c > :z")
        ec.check_unused()
        assert up.apply({"k": {"S": "a"}})["counter"] == {"N": "1"}


def test_errors_are_never_cached() -> None:
    _ctx(None, {":v": {"S": "a"}}).condition("a = :v")
    for _ in range(2):
        with pytest.raises(ValidationError, match="attribute value: :w"):
            _ctx(None, {":v": {"S": "a"}}).condition("a = :w")
        with pytest.raises(ValidationError, match="cannot be converted"):
            _ctx(None, {":v": {"N": "x"}})


def test_projection_and_update_memo_per_names() -> None:
    p1 = _ctx({"#n": "a"}, None).projection("#n")
    p2 = _ctx({"#n": "b"}, None).projection("#n")
    assert p1.apply({"a": {"S": "1"}, "b": {"S": "2"}}) == {"a": {"S": "1"}}
    assert p2.apply({"a": {"S": "1"}, "b": {"S": "2"}}) == {"b": {"S": "2"}}
