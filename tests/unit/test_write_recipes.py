"""Write recipes: a BatchExecuteStatement write rebuilt from its statement on another node."""

from __future__ import annotations

import msgpack
import pytest

import quorumdb.api.ops.partiql  # noqa: F401 - registers the "partiql" recipe
from quorumdb.db import recipes
from quorumdb.errors import ConditionalCheckFailedError, ValidationError
from tests.unit.test_dataplane_support import table_def


def _wire(value: object) -> object:
    """What a recipe looks like after the trip between nodes."""
    return msgpack.unpackb(msgpack.packb(value, use_bin_type=True), raw=False)


def test_an_update_statement_is_rebuilt_with_its_condition() -> None:
    t = table_def("t", range_key=False)
    key = {"pk": {"S": "a"}}
    recipe = _wire(["partiql", ["UPDATE \"t\" SET v = ? WHERE pk = 'a' AND v = 5", [{"N": "2"}], True]])
    mutate = recipes.rebuild(t, recipe, key)
    assert mutate({"pk": {"S": "a"}, "v": {"N": "5"}}) == {"pk": {"S": "a"}, "v": {"N": "2"}}
    with pytest.raises(ConditionalCheckFailedError) as failed:
        mutate({"pk": {"S": "a"}, "v": {"N": "1"}})
    assert failed.value.item == {"pk": {"S": "a"}, "v": {"N": "1"}}, "ALL_OLD travels with the recipe"
    with pytest.raises(ConditionalCheckFailedError):
        mutate(None)  # UPDATE changes an existing item only


def test_a_recipe_must_name_the_item_and_table_it_is_shipped_with() -> None:
    t = table_def("t", range_key=False)
    delete = ["partiql", ["DELETE FROM \"t\" WHERE pk = 'a'", [], False]]
    assert recipes.rebuild(t, delete, {"pk": {"S": "a"}})({"pk": {"S": "a"}}) is None
    with pytest.raises(ValidationError):
        recipes.rebuild(t, delete, {"pk": {"S": "b"}})
    with pytest.raises(ValidationError):
        recipes.rebuild(t, ["partiql", ["DELETE FROM \"u\" WHERE pk = 'a'", [], False]], {"pk": {"S": "a"}})
    with pytest.raises(ValidationError):
        recipes.rebuild(t, ["pickle", b"..."], {"pk": {"S": "a"}})


def test_a_transaction_action_may_name_its_table_by_arn() -> None:
    import quorumdb.api.ops.transactions  # noqa: F401 - registers the "transact" recipe
    from quorumdb.model.schema import arn_for

    t = table_def("tbl", range_key=False)
    key = {"pk": {"S": "a"}}
    for name in ("tbl", arn_for("tbl")):
        put = ["transact", {"Put": {"TableName": name, "Item": {"pk": {"S": "a"}, "v": {"N": "1"}}}}]
        assert recipes.rebuild(t, put, key)(None) == {"pk": {"S": "a"}, "v": {"N": "1"}}
    with pytest.raises(ValidationError):
        recipes.rebuild(t, ["transact", {"Put": {"TableName": arn_for("other"), "Item": key}}], key)
