"""Stop-gap DynamoDB item size until ``quorumdb.model.size`` exists; never import it directly."""

from __future__ import annotations

import base64
from typing import Any

from quorumdb.model.types import Item


def _num(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def value_size(av: dict[str, Any]) -> int:
    ((t, v),) = av.items()
    if t == "S":
        return len(v.encode("utf-8"))
    if t == "N":
        return _num(v)
    if t == "B":
        return len(base64.b64decode(v))
    if t in ("NULL", "BOOL"):
        return 1
    if t == "SS":
        return sum(len(s.encode("utf-8")) for s in v)
    if t == "NS":
        return sum(_num(s) for s in v)
    if t == "BS":
        return sum(len(base64.b64decode(s)) for s in v)
    if t == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(x) + 1 for k, x in v.items())
    if t == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    raise ValueError(t)


def item_size(item: Item) -> int:
    return sum(len(k.encode("utf-8")) + value_size(v) for k, v in item.items())
