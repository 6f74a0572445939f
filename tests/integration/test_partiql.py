"""PartiQL through boto3 and the AWS CLI: ExecuteStatement (SELECT as GetItem / Query / Scan
with Limit and NextToken, INSERT, UPDATE, DELETE, RETURNING, parameters), BatchExecuteStatement
(per-statement errors) and ExecuteTransaction (all or nothing, idempotency tokens)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import TableFactory, aws_cli, expect_error, index_settled

MISSING_KEY = "Where clause does not contain a mandatory equality on all key attributes"
PARAM_MISMATCH = "Number of parameters in request and statement doesn't match."


def run(ddb: Any, statement: str, *params: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    if params:
        kwargs["Parameters"] = list(params)
    out: dict[str, Any] = ddb.execute_statement(Statement=statement, **kwargs)
    return out


def select_all(ddb: Any, statement: str, *params: dict[str, Any], **kwargs: Any) -> tuple[list[Any], int]:
    """Every item of a SELECT, following NextToken; and the number of pages."""
    items: list[Any] = []
    pages = 0
    token = None
    while True:
        args = dict(kwargs)
        if token is not None:
            args["NextToken"] = token
        page = run(ddb, statement, *params, **args)
        pages += 1
        items.extend(page["Items"])
        token = page.get("NextToken")
        if token is None:
            return items, pages


@pytest.fixture()
def music(ddb: Any, make_table: TableFactory) -> str:
    """A table keyed by (Artist S, Song S) holding three songs of two artists."""
    name = make_table(("Artist", "S"), ("Song", "S"))
    for artist, song, year in (("Acme", "A", 2001), ("Acme", "B", 2002), ("Zed", "C", 2003)):
        run(ddb, f"INSERT INTO \"{name}\" VALUE {{'Artist': '{artist}', 'Song': '{song}', 'Year': {year}}}")
    return name


# -- SELECT ----------------------------------------------------------------------------------------


def test_select_by_full_key_partition_key_and_scan(ddb: Any, music: str) -> None:
    got = run(ddb, f'SELECT * FROM "{music}" WHERE Artist = \'Acme\' AND Song = \'B\'')
    assert got["Items"] == [{"Artist": {"S": "Acme"}, "Song": {"S": "B"}, "Year": {"N": "2002"}}]
    assert "NextToken" not in got
    assert run(ddb, f"SELECT * FROM \"{music}\" WHERE Artist = 'Acme' AND Song = 'X'")["Items"] == []

    songs = run(ddb, f"select Song from {music} where Artist = 'Acme'")["Items"]
    assert songs == [{"Song": {"S": "A"}}, {"Song": {"S": "B"}}]
    desc = run(ddb, f"SELECT Song FROM \"{music}\" WHERE Artist = 'Acme' ORDER BY Song DESC")
    assert desc["Items"] == [{"Song": {"S": "B"}}, {"Song": {"S": "A"}}]

    everything = run(ddb, f'SELECT * FROM "{music}"')["Items"]
    assert sorted(i["Song"]["S"] for i in everything) == ["A", "B", "C"]
    filtered = run(ddb, f'SELECT Song FROM "{music}" WHERE "Year" >= 2002 AND begins_with(Artist, \'Z\')')
    assert filtered["Items"] == [{"Song": {"S": "C"}}]


def test_select_operators(ddb: Any, make_table: TableFactory) -> None:
    t = make_table(("pk", "S"), ("n", "N"))
    for n in range(6):
        run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'p', 'n': {n}, 'tags': <<'x', 't{n}'>>, "
                 f"'doc': {{'list': [{n}, 'two'], 'flag': {'true' if n % 2 else 'false'}}}}}")
    run(ddb, f"UPDATE \"{t}\" SET extra = null WHERE pk = 'p' AND n = 5")

    def ns(where: str) -> list[int]:
        items = run(ddb, f'SELECT n FROM "{t}" WHERE pk = \'p\' AND ({where})')["Items"]
        return [int(i["n"]["N"]) for i in items]

    assert ns("n BETWEEN 2 AND 4") == [2, 3, 4]
    assert ns("n IN [1, 5, 9]") == [1, 5]
    assert ns("n NOT IN (1, 5)") == [0, 2, 3, 4]
    assert ns("n <> 0 AND n < 2 OR n >= 5") == [1, 5]
    assert ns("n != 3 AND NOT n > 1") == [0, 1]
    assert ns("contains(tags, 't3')") == [3]
    assert ns("size(tags) = 2 AND doc.list[0] = 4") == [4]
    assert ns("doc.flag = true AND doc['list'][1] = 'two'") == [1, 3, 5]
    assert ns("attribute_type(doc, 'M') AND extra IS NOT MISSING") == [5]
    assert ns("extra IS MISSING AND n > 3") == [4]
    assert ns("extra IS NULL") == [5]


def test_select_on_index_and_consistent_read(ddb: Any, make_table: TableFactory) -> None:
    t = make_table(
        ("pk", "S"),
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "city", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byCity",
                "KeySchema": [{"AttributeName": "city", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for pk, city in (("a", "Oslo"), ("b", "Rome"), ("c", "Oslo")):
        run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': ?, 'city': ?}}", {"S": pk}, {"S": city})
    index_settled(ddb, t, "byCity", 3)  # global indexes are eventually consistent
    got = run(ddb, f'SELECT pk FROM "{t}"."byCity" WHERE city = \'Oslo\'')["Items"]
    assert sorted(i["pk"]["S"] for i in got) == ["a", "c"]
    paged, pages = select_all(ddb, f'SELECT pk FROM "{t}"."byCity" WHERE city = \'Oslo\'', Limit=1)
    assert sorted(i["pk"]["S"] for i in paged) == ["a", "c"] and pages == 3
    scanned, pages = select_all(ddb, f'SELECT pk FROM "{t}"."byCity"', Limit=2)
    assert sorted(i["pk"]["S"] for i in scanned) == ["a", "b", "c"] and pages == 2
    with expect_error("ValidationException", "Consistent reads are not supported on global secondary indexes"):
        run(ddb, f'SELECT * FROM "{t}"."byCity" WHERE city = \'Oslo\'', ConsistentRead=True)
    with expect_error("ValidationException", "The table does not have the specified index"):
        run(ddb, f'SELECT * FROM "{t}"."nope" WHERE city = \'Oslo\'')
    strong = run(ddb, f"SELECT * FROM \"{t}\" WHERE pk = 'b'", ConsistentRead=True)
    assert strong["Items"] == [{"pk": {"S": "b"}, "city": {"S": "Rome"}}]


@pytest.mark.parametrize("where", ["pk = 'p'", "n > -1"], ids=["query", "scan"])
def test_pagination_with_limit_and_next_token(ddb: Any, make_table: TableFactory, where: str) -> None:
    t = make_table(("pk", "S"), ("n", "N"))
    for n in range(23):
        run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'p', 'n': ?, 'odd': ?}}", {"N": str(n)}, {"BOOL": n % 2 == 1})
    items, pages = select_all(ddb, f'SELECT n FROM "{t}" WHERE {where}', Limit=5)
    assert sorted(int(i["n"]["N"]) for i in items) == list(range(23))
    assert pages == 5
    # Limit counts items read, before WHERE filters them (as Query and Scan do).
    odd, pages = select_all(ddb, f'SELECT n FROM "{t}" WHERE {where} AND odd = true', Limit=4)
    assert sorted(int(i["n"]["N"]) for i in odd) == list(range(1, 23, 2))
    assert pages == 6
    first = run(ddb, f'SELECT * FROM "{t}" WHERE {where}', Limit=2)
    assert len(first["Items"]) == 2 and "NextToken" in first and "LastEvaluatedKey" in first
    with expect_error("ValidationException", "Invalid NextToken"):
        run(ddb, f'SELECT n FROM "{t}" WHERE {where}', Limit=2, NextToken=first["NextToken"])
    with expect_error("ValidationException", "Invalid NextToken"):
        run(ddb, f'SELECT * FROM "{t}" WHERE {where}', NextToken="garbage!")


# -- INSERT / UPDATE / DELETE ----------------------------------------------------------------------


def test_insert_literals_and_duplicate(ddb: Any, make_table: TableFactory) -> None:
    t = make_table()
    out = run(
        ddb,
        f"INSERT INTO \"{t}\" VALUE {{'pk': 'k', 'n': -1.50e2, 's': 'it''s', 'ns': <<1, 2>>, "
        "'ss': <<'a'>>, 'l': [true, null, {'m': 1}], 'b': ?}",
        {"B": b"\x00\x01"},
    )
    assert out["Items"] == []
    item = ddb.get_item(TableName=t, Key={"pk": {"S": "k"}})["Item"]
    assert item == {
        "pk": {"S": "k"},
        "n": {"N": "-150"},
        "s": {"S": "it's"},
        "ns": {"NS": item["ns"]["NS"]},
        "ss": {"SS": ["a"]},
        "l": {"L": [{"BOOL": True}, {"NULL": True}, {"M": {"m": {"N": "1"}}}]},
        "b": {"B": b"\x00\x01"},
    }
    assert sorted(item["ns"]["NS"]) == ["1", "2"]
    with expect_error("DuplicateItemException", "Duplicate primary key exists in table"):
        run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'k'}}")
    with expect_error("ValidationException", "Missing the key pk in the item"):
        run(ddb, f"INSERT INTO \"{t}\" VALUE {{'other': 'k'}}")


def test_update_set_remove_and_returning(ddb: Any, make_table: TableFactory) -> None:
    t = make_table(("pk", "S"), ("sk", "N"))
    run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'a', 'sk': 1, 'n': 5, 'l': [1], 's': <<'x', 'y'>>, "
             "'m': {'deep': [10, 20]}, 'gone': 'bye'}")
    out = run(
        ddb,
        f"UPDATE \"{t}\" SET n = n + 1 SET l = list_append(l, [2, 3]), s = set_add(s, <<'z'>>) "
        "SET m.deep[1] = 21 REMOVE gone WHERE pk = 'a' AND sk = 1 RETURNING ALL NEW *",
    )
    assert out["Items"] == [
        {
            "pk": {"S": "a"},
            "sk": {"N": "1"},
            "n": {"N": "6"},
            "l": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]},
            "s": {"SS": out["Items"][0]["s"]["SS"]},
            "m": {"M": {"deep": {"L": [{"N": "10"}, {"N": "21"}]}}},
        }
    ]
    assert sorted(out["Items"][0]["s"]["SS"]) == ["x", "y", "z"]
    old = run(
        ddb,
        f"UPDATE \"{t}\" SET s = set_delete(s, <<'x'>>), n = n - ? WHERE pk = 'a' AND sk = 1 "
        "RETURNING MODIFIED OLD *",
        {"N": "10"},
    )
    assert old["Items"][0]["n"] == {"N": "6"} and set(old["Items"][0]) == {"s", "n"}
    new = run(ddb, f"UPDATE \"{t}\" SET n = 0 WHERE pk = 'a' AND sk = 1 AND n = -4 RETURNING MODIFIED NEW *")
    assert new["Items"] == [{"n": {"N": "0"}}]
    with expect_error("ValidationException", "Cannot update attribute sk. This attribute is part of the key"):
        run(ddb, f"UPDATE \"{t}\" SET sk = 2 WHERE pk = 'a' AND sk = 1")


def test_update_and_delete_conditions(ddb: Any, make_table: TableFactory) -> None:
    t = make_table()
    run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'a', 'v': 1}}")
    # UPDATE never creates an item.
    with expect_error("ConditionalCheckFailedException", "The conditional request failed"):
        run(ddb, f"UPDATE \"{t}\" SET v = 2 WHERE pk = 'missing'")
    assert "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "missing"}})
    # Extra WHERE conditions are condition expressions.
    with expect_error("ConditionalCheckFailedException") as err:
        run(ddb, f"UPDATE \"{t}\" SET v = 2 WHERE pk = 'a' AND v = 7",
            ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert err.response["Item"] == {"pk": {"S": "a"}, "v": {"N": "1"}}
    with expect_error("ConditionalCheckFailedException", "The conditional request failed"):
        run(ddb, f"DELETE FROM \"{t}\" WHERE pk = 'a' AND v > 1")
    assert ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})["Item"]["v"] == {"N": "1"}
    gone = run(ddb, f"DELETE FROM \"{t}\" WHERE pk = 'a' AND v = 1 RETURNING ALL OLD *")
    assert gone["Items"] == [{"pk": {"S": "a"}, "v": {"N": "1"}}]
    assert "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})
    assert run(ddb, f"DELETE FROM \"{t}\" WHERE pk = 'a'")["Items"] == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE \"{t}\" SET v = 1 WHERE pk = 'a'",
        "UPDATE \"{t}\" SET v = 1 WHERE sk = 1",
        "UPDATE \"{t}\" SET v = 1 WHERE pk = 'a' OR sk = 1",
        "DELETE FROM \"{t}\" WHERE pk = 'a' AND sk > 1",
        "DELETE FROM \"{t}\"",
    ],
)
def test_writes_need_the_whole_key(ddb: Any, make_table: TableFactory, statement: str) -> None:
    t = make_table(("pk", "S"), ("sk", "N"))
    with expect_error("ValidationException", MISSING_KEY):
        run(ddb, statement.format(t=t))


# -- errors ------------------------------------------------------------------------------------------


def test_statement_errors(ddb: Any, make_table: TableFactory) -> None:
    t = make_table()
    with expect_error("ValidationException", "Statement wasn't well formed, can't be processed: "):
        run(ddb, f'SELECT * FORM "{t}"')
    with expect_error("ValidationException", "at line 1, column 8"):
        run(ddb, "SELECT FROM x")
    with expect_error("ResourceNotFoundException", "Requested resource not found"):
        run(ddb, "SELECT * FROM \"no_such_table\" WHERE pk = 'a'")
    with expect_error("ValidationException", PARAM_MISMATCH):
        run(ddb, f'SELECT * FROM "{t}" WHERE pk = ?')
    with expect_error("ValidationException", PARAM_MISMATCH):
        run(ddb, f"SELECT * FROM \"{t}\" WHERE pk = 'a'", {"S": "extra"})
    with expect_error("ValidationException", "Invalid attribute type name found"):
        run(ddb, f"SELECT * FROM \"{t}\" WHERE attribute_type(pk, 'XX')")
    with expect_error("ValidationException", "EXISTS statements are only supported in ExecuteTransaction"):
        run(ddb, f"EXISTS(SELECT * FROM \"{t}\" WHERE pk = 'a')")
    with expect_error("ValidationException", "Must have WHERE clause in the statement when using ORDER BY clause."):
        run(ddb, f'SELECT * FROM "{t}" ORDER BY pk')
    with expect_error("ValidationException", "ORDER BY is supported only with an equality condition"):
        run(ddb, f"SELECT * FROM \"{t}\" WHERE other = 1 ORDER BY pk")
    with expect_error("ValidationException", "The function is not allowed to be used this way"):
        run(ddb, f"SELECT * FROM \"{t}\" WHERE begins_with(pk, 'a') = true")
    with expect_error("ValidationException", "Attempting to store more than 38 significant digits"):
        run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'a', 'n': 1234567890123456789012345678901234567890}}")


def test_consumed_capacity(ddb: Any, make_table: TableFactory) -> None:
    t = make_table()
    put = run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'a'}}", ReturnConsumedCapacity="TOTAL")
    assert put["ConsumedCapacity"] == {"TableName": t, "CapacityUnits": 1.0}
    got = run(ddb, f"SELECT * FROM \"{t}\" WHERE pk = 'a'", ReturnConsumedCapacity="TOTAL")
    assert got["ConsumedCapacity"] == {"TableName": t, "CapacityUnits": 0.5}
    scan = run(ddb, f'SELECT * FROM "{t}"', ReturnConsumedCapacity="TOTAL", ConsistentRead=True)
    assert scan["ConsumedCapacity"] == {"TableName": t, "CapacityUnits": 1.0}


# -- BatchExecuteStatement ---------------------------------------------------------------------------


def test_batch_execute_statement(ddb: Any, make_table: TableFactory) -> None:
    t = make_table()
    run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'old', 'v': 1}}")
    run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'older', 'v': 1}}")
    writes = ddb.batch_execute_statement(
        Statements=[
            {"Statement": f"INSERT INTO \"{t}\" VALUE {{'pk': ?}}", "Parameters": [{"S": "new"}]},
            {"Statement": f"INSERT INTO \"{t}\" VALUE {{'pk': 'old'}}"},
            {"Statement": f"UPDATE \"{t}\" SET v = 2 WHERE pk = 'older' AND v = 5",
             "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
            {"Statement": "DELETE FROM \"no_such_table\" WHERE pk = 'x'"},
            {"Statement": "DELETE FROM"},
        ],
        ReturnConsumedCapacity="TOTAL",
    )
    r = writes["Responses"]
    assert r[0] == {"TableName": t}
    assert r[1]["Error"] == {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}
    assert r[2]["Error"] == {
        "Code": "ConditionalCheckFailed",
        "Message": "The conditional request failed",
        "Item": {"pk": {"S": "older"}, "v": {"N": "1"}},
    }
    assert r[3]["Error"] == {"Code": "ResourceNotFound", "Message": "Requested resource not found"}
    assert r[4]["Error"]["Code"] == "ValidationError"
    assert r[4]["Error"]["Message"].startswith("Statement wasn't well formed, can't be processed: ")
    assert writes["ConsumedCapacity"] == [{"TableName": t, "CapacityUnits": 1.0}]

    reads = ddb.batch_execute_statement(
        Statements=[
            {"Statement": f"SELECT * FROM \"{t}\" WHERE pk = 'new'", "ConsistentRead": True},
            {"Statement": f"SELECT v FROM \"{t}\" WHERE pk = ?", "Parameters": [{"S": "old"}]},
            {"Statement": f"SELECT * FROM \"{t}\" WHERE pk = 'absent'"},
            {"Statement": f'SELECT * FROM "{t}"'},
        ]
    )["Responses"]
    assert reads[0] == {"TableName": t, "Item": {"pk": {"S": "new"}}}
    assert reads[1] == {"TableName": t, "Item": {"v": {"N": "1"}}}
    assert reads[2] == {"TableName": t}
    assert reads[3]["Error"] == {
        "Code": "ValidationError",
        "Message": "Select statements within BatchExecuteStatement must specify the primary key in the where clause.",
    }
    with expect_error("ValidationException", "Provided list of item keys contains duplicates"):
        ddb.batch_execute_statement(
            Statements=[
                {"Statement": f"SELECT * FROM \"{t}\" WHERE pk = 'new'"},
                {"Statement": f"SELECT v FROM \"{t}\" WHERE pk = ?", "Parameters": [{"S": "new"}]},
            ]
        )
    with expect_error("ValidationException", "Provided list of item keys contains duplicates"):
        ddb.batch_execute_statement(
            Statements=[
                {"Statement": f"UPDATE \"{t}\" SET v = 3 WHERE pk = 'new'"},
                {"Statement": f"DELETE FROM \"{t}\" WHERE pk = 'new'"},
            ]
        )
    with expect_error("ValidationException", "either all read statements or all write statements"):
        ddb.batch_execute_statement(
            Statements=[
                {"Statement": f"SELECT * FROM \"{t}\" WHERE pk = 'new'"},
                {"Statement": f"DELETE FROM \"{t}\" WHERE pk = 'new'"},
            ]
        )


# -- ExecuteTransaction ------------------------------------------------------------------------------


def test_execute_transaction_writes_are_atomic(ddb: Any, make_table: TableFactory) -> None:
    t = make_table()
    run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'acct', 'n': 10}}")
    run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'lock', 'state': 'open'}}")
    run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'tmp'}}")
    out = ddb.execute_transaction(
        TransactStatements=[
            {"Statement": f"UPDATE \"{t}\" SET n = n - ? WHERE pk = 'acct' AND n >= 3", "Parameters": [{"N": "3"}]},
            {"Statement": f"INSERT INTO \"{t}\" VALUE {{'pk': 'log1'}}"},
            {"Statement": f"DELETE FROM \"{t}\" WHERE pk = 'tmp'"},
            {"Statement": f"EXISTS(SELECT * FROM \"{t}\" WHERE pk = 'lock' AND state = 'open')"},
        ],
        ReturnConsumedCapacity="TOTAL",
    )
    assert out["ConsumedCapacity"] == [
        {"TableName": t, "CapacityUnits": 8.0, "WriteCapacityUnits": 8.0}
    ]
    assert ddb.get_item(TableName=t, Key={"pk": {"S": "acct"}})["Item"]["n"] == {"N": "7"}
    assert "Item" in ddb.get_item(TableName=t, Key={"pk": {"S": "log1"}})
    assert "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "tmp"}})

    with expect_error("TransactionCanceledException") as err:
        ddb.execute_transaction(
            TransactStatements=[
                {"Statement": f"UPDATE \"{t}\" SET n = 0 WHERE pk = 'acct'"},
                {"Statement": f"INSERT INTO \"{t}\" VALUE {{'pk': 'log1'}}"},
                {"Statement": f"EXISTS(SELECT * FROM \"{t}\" WHERE pk = 'lock' AND state = 'closed')",
                 "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
            ]
        )
    reasons = err.response["CancellationReasons"]
    assert reasons[0] == {"Code": "None"}
    assert reasons[1] == {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}
    assert reasons[2]["Code"] == "ConditionalCheckFailed"
    assert reasons[2]["Item"] == {"pk": {"S": "lock"}, "state": {"S": "open"}}
    assert ddb.get_item(TableName=t, Key={"pk": {"S": "acct"}})["Item"]["n"] == {"N": "7"}

    with expect_error("ValidationException", "multiple operations on one item"):
        ddb.execute_transaction(
            TransactStatements=[
                {"Statement": f"UPDATE \"{t}\" SET n = 0 WHERE pk = 'acct'"},
                {"Statement": f"DELETE FROM \"{t}\" WHERE pk = 'acct'"},
            ]
        )
    with expect_error("ValidationException", "either all read statements or all write statements"):
        ddb.execute_transaction(
            TransactStatements=[
                {"Statement": f"SELECT * FROM \"{t}\" WHERE pk = 'acct'"},
                {"Statement": f"DELETE FROM \"{t}\" WHERE pk = 'log1'"},
            ]
        )


def test_execute_transaction_token_is_idempotent(ddb: Any, make_table: TableFactory) -> None:
    t = make_table()
    run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'c', 'n': 0}}")
    statements = [{"Statement": f"UPDATE \"{t}\" SET n = n + 1 WHERE pk = 'c'"}]
    for _ in range(3):
        ddb.execute_transaction(TransactStatements=statements, ClientRequestToken="tok-1")
    assert ddb.get_item(TableName=t, Key={"pk": {"S": "c"}})["Item"]["n"] == {"N": "1"}
    with expect_error("IdempotentParameterMismatchException"):
        ddb.execute_transaction(
            TransactStatements=[{"Statement": f"UPDATE \"{t}\" SET n = n + 2 WHERE pk = 'c'"}],
            ClientRequestToken="tok-1",
        )


def test_execute_transaction_reads(ddb: Any, make_table: TableFactory) -> None:
    t = make_table(("pk", "S"), ("sk", "N"))
    run(ddb, f"INSERT INTO \"{t}\" VALUE {{'pk': 'a', 'sk': 1, 'v': 'one', 'w': 1}}")
    out = ddb.execute_transaction(
        TransactStatements=[
            {"Statement": f"SELECT v FROM \"{t}\" WHERE pk = 'a' AND sk = 1"},
            {"Statement": f"SELECT * FROM \"{t}\" WHERE pk = ? AND sk = ?", "Parameters": [{"S": "a"}, {"N": "2"}]},
        ],
        ReturnConsumedCapacity="TOTAL",
    )
    assert out["Responses"] == [{"Item": {"v": {"S": "one"}}}, {}]
    assert out["ConsumedCapacity"] == [{"TableName": t, "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0}]
    with expect_error("ValidationException", "must specify the primary key"):
        ddb.execute_transaction(TransactStatements=[{"Statement": f"SELECT * FROM \"{t}\" WHERE pk = 'a'"}])


# -- AWS CLI ------------------------------------------------------------------------------------------


def aws(endpoint: str, tmp_path: Path, *args: str) -> Any:
    return aws_cli(endpoint, tmp_path, "dynamodb", *args)


def test_aws_cli_execute_statement(endpoint: str, ddb: Any, make_table: TableFactory, tmp_path: Path) -> None:
    t = make_table(("pk", "S"), ("sk", "N"))
    aws(endpoint, tmp_path, "execute-statement", "--statement",
        f"INSERT INTO \"{t}\" VALUE {{'pk': ?, 'sk': ?, 'msg': 'hi'}}",
        "--parameters", json.dumps([{"S": "cli"}, {"N": "1"}]))
    aws(endpoint, tmp_path, "execute-statement", "--statement",
        f"INSERT INTO \"{t}\" VALUE {{'pk': 'cli', 'sk': 2, 'msg': 'there'}}")
    got = aws(endpoint, tmp_path, "execute-statement", "--statement",
              f"SELECT msg FROM \"{t}\" WHERE pk = 'cli' ORDER BY sk DESC")
    assert got["Items"] == [{"msg": {"S": "there"}}, {"msg": {"S": "hi"}}]
    aws(endpoint, tmp_path, "execute-statement", "--statement",
        f"UPDATE \"{t}\" SET msg = 'bye' WHERE pk = 'cli' AND sk = 1")
    item = ddb.get_item(TableName=t, Key={"pk": {"S": "cli"}, "sk": {"N": "1"}})["Item"]
    assert item["msg"] == {"S": "bye"}
