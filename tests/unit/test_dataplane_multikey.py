"""LocalDataPlane queries of a multi-attribute GSI key (both engines): every sort-key prefix
and operator, both directions and every ExclusiveStartKey, against a brute-force filter."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

import pytest
from test_dataplane_support import put, table_def
from test_dataplane_support import run as run_on

from quorumdb.db import LocalDataPlane
from quorumdb.db.contract import SortKeyRange
from quorumdb.model.schema import IndexDef, KeyAttr, KeySchema

INDEX = IndexDef(
    name="multi",
    index_id=0,
    local=False,
    key_schema=KeySchema(
        hash=KeyAttr(name="t", type="S"),
        extra_hash=(KeyAttr(name="r", type="N"),),
        range=KeyAttr(name="x", type="N"),
        extra_range=(KeyAttr(name="y", type="S"),),
    ),
)
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda v, a: v == a,
    "LT": lambda v, a: v < a,
    "LE": lambda v, a: v <= a,
    "GT": lambda v, a: v > a,
    "GE": lambda v, a: v >= a,
}


@pytest.fixture
def run(engine_kind: str, tmp_path: Any) -> Callable[..., None]:
    return functools.partial(run_on, engine_kind, tmp_path)


def natural(item: dict[str, Any]) -> tuple[Any, ...]:
    return (int(item["x"]["N"]), item["y"]["S"].encode(), item["pk"]["S"].encode(), int(item["sk"]["N"]))


def test_multi_attribute_queries_match_brute_force(run: Any) -> None:
    rng = random.Random(11)
    items = []
    for i in range(120):
        item: dict[str, Any] = {
            "pk": {"S": f"p{i % 17}"}, "sk": {"N": str(i)},
            "t": {"S": rng.choice(["a", "b"])}, "r": {"N": str(rng.choice([1, 2]))},
            "x": {"N": str(rng.randrange(-3, 4))}, "y": {"S": rng.choice(["k", "u", "uv", "v", "w\x00"])},
        }
        if i % 11 == 0:
            del item["r"]  # not indexed
        items.append(item)

    async def body(dp: LocalDataPlane) -> None:
        t = await dp.create_table(table_def(indexes=(INDEX,)))
        ix = t.indexes[0]
        await dp.write_many([put(t, i) for i in items])
        part = [i for i in items if i["t"] == {"S": "a"} and i.get("r") == {"N": "1"}]
        hv = ({"S": "a"}, {"N": "1"})
        everything = [r.item for r in await dp.query(t, ix, hv, None)]
        assert [natural(i) for i in everything] == sorted(natural(i) for i in part)
        cases: list[tuple[SortKeyRange, Callable[[dict[str, Any]], bool]]] = []
        for op, f in OPS.items():
            for xv in (-1, 0, 2):
                cases.append((SortKeyRange(op=op, values=({"N": str(xv)},)),
                              lambda i, f=f, xv=xv: f(int(i["x"]["N"]), xv)))
                for yv in ("u", "v"):
                    cases.append((SortKeyRange(op=op, values=({"S": yv},), prefix=({"N": str(xv)},)),
                                  lambda i, f=f, xv=xv, yv=yv: int(i["x"]["N"]) == xv and f(i["y"]["S"], yv)))
        cases.append((SortKeyRange(op="BETWEEN", values=({"N": "-1"}, {"N": "1"})), lambda i: -1 <= int(i["x"]["N"]) <= 1))
        cases.append((SortKeyRange(op="BEGINS_WITH", values=({"S": "u"},), prefix=({"N": "0"},)),
                      lambda i: i["x"]["N"] == "0" and i["y"]["S"].startswith("u")))
        for sort, keep in cases:
            want = [i for i in everything if keep(i)]
            got = [r.item for r in await dp.query(t, ix, hv, sort)]
            assert got == want, sort
            assert [r.item for r in await dp.query(t, ix, hv, sort, forward=False)] == want[::-1], sort
            for cut in range(0, len(want), 3):
                esk = {k: want[cut][k] for k in ("pk", "sk", "t", "r", "x", "y")}
                after = [r.item for r in await dp.query(t, ix, hv, sort, exclusive_start=esk)]
                assert after == want[cut + 1 :], sort

    run(body)
