"""Vocabulary of item data, shared by every layer.

Items are kept in DynamoDB's wire shape from the HTTP layer down to storage, so a stored item
can be returned without conversion:

- ``AttributeValue``: a one-key dict such as ``{"S": "abc"}``, ``{"N": "12.5"}`` (numbers are
  canonical strings, never floats), ``{"B": "<base64 text>"}`` (binary stays base64 text as on
  the wire; decode only where bytes are needed: key encoding, size, comparison),
  ``{"SS": [...]}``, ``{"NS": [...]}``, ``{"BS": [...]}``, ``{"M": {name: AttributeValue}}``,
  ``{"L": [AttributeValue]}``, ``{"NULL": True}``, ``{"BOOL": bool}``.
- ``Item``: ``dict[str, AttributeValue]``, attribute name to value.
- ``Key``: an ``Item`` holding exactly the table's (or index's) key attributes.

An item that reached storage has been validated and its numbers canonicalized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = ["SortKeyRange", "AttributeValue", "Item", "Key", "ScalarType", "KeyType", "TYPE_TAGS", "SCALAR_KEY_TYPES"]

AttributeValue: TypeAlias = dict[str, Any]
Item: TypeAlias = dict[str, AttributeValue]
Key: TypeAlias = dict[str, AttributeValue]
ScalarType: TypeAlias = Literal["S", "N", "B"]
KeyType: TypeAlias = Literal["HASH", "RANGE"]

TYPE_TAGS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})
SCALAR_KEY_TYPES = frozenset({"S", "N", "B"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SortKeyRange:
    """A KeyConditionExpression's sort-key part, already validated and typed.

    ``op`` is one of ``EQ LT LE GT GE BETWEEN BEGINS_WITH``; ``values`` has one value
    (two for BETWEEN). ``None`` in place of a range means "every sort key".

    On a multi-attribute sort key, ``prefix`` holds the values the leading sort attributes
    equal (in order); ``op`` applies to the sort attribute right after them.
    """

    op: str
    values: tuple[AttributeValue, ...]
    prefix: tuple[AttributeValue, ...] = ()
