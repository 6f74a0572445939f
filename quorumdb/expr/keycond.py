"""Key conditions of a Query: from a resolved KeyConditionExpression (or legacy KeyConditions)
to the partition-key value and the sort-key range the storage layer understands.

Checks, in DynamoDB's order: operators allowed in a key condition, one condition per key,
attribute value types per operator, then the table's (or index's) key schema. Nothing here
reads storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quorumdb.errors import ValidationError
from quorumdb.expr.ast import And, Between, Call, Compare, CondNode, In, Literal, Not, Or, Path
from quorumdb.model.compare import compare, type_of
from quorumdb.model.schema import KeySchema, TableDef
from quorumdb.model.types import AttributeValue, SortKeyRange

__all__ = [
    "KeyCondition",
    "conditions_from_expression",
    "validate_conditions",
    "key_condition_from_conditions",
    "check_key_paths",
    "index_key_attributes",
    "CONDITIONS_LENGTH",
]

_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_OP_NAMES = {"=": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}

# Legacy ComparisonOperator -> (number of values (None: at least one), allowed value types).
OPERATOR_RULES: dict[str, tuple[int | None, tuple[str, ...] | None]] = {
    "NULL": (0, None),
    "NOT_NULL": (0, None),
    "EQ": (1, ("S", "N", "B", "SS", "NS", "BS")),
    "NE": (1, ("S", "N", "B", "SS", "NS", "BS")),
    "LE": (1, ("S", "N", "B")),
    "LT": (1, ("S", "N", "B")),
    "GE": (1, ("S", "N", "B")),
    "GT": (1, ("S", "N", "B")),
    "CONTAINS": (1, ("S", "N", "B")),
    "NOT_CONTAINS": (1, ("S", "N", "B")),
    "BEGINS_WITH": (1, ("S", "B")),
    "IN": (None, ("S", "N", "B")),
    "BETWEEN": (2, ("S", "N", "B")),
}

CONDITIONS_LENGTH = "Conditions can be of length 1 or 2 only"
BETWEEN_BOUNDS = "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyCondition:
    """A validated key condition: the partition-key value(s), an optional sort-key range.

    ``hash_names``/``hash_values`` hold one entry per partition-key attribute (several for a
    multi-attribute index key); ``sort_name`` is the sort attribute ``sort.op`` applies to.
    """

    hash_names: tuple[str, ...]
    hash_values: tuple[AttributeValue, ...]
    sort: SortKeyRange | None = None
    sort_name: str | None = None

    @property
    def hash_name(self) -> str:
        return self.hash_names[0]

    @property
    def hash_value(self) -> AttributeValue:
        return self.hash_values[0]


def conditions_from_expression(tree: CondNode) -> dict[str, tuple[str, list[AttributeValue]]]:
    """Attribute name -> (ComparisonOperator, values), as DynamoDB reads a key condition."""
    conds: dict[str, tuple[str, list[AttributeValue]]] = {}
    _walk(tree, conds)
    return conds


def _walk(node: Any, conds: dict[str, tuple[str, list[AttributeValue]]]) -> None:
    if isinstance(node, Or):
        raise ValidationError("Invalid operator used in KeyConditionExpression: OR")
    if isinstance(node, Not):
        raise ValidationError("Invalid operator used in KeyConditionExpression: NOT")
    if isinstance(node, In):
        raise ValidationError("Invalid operator used in KeyConditionExpression: IN")
    if isinstance(node, Compare) and node.op == "<>":
        raise ValidationError("Invalid operator used in KeyConditionExpression: <>")
    if isinstance(node, Call):
        if node.name in ("attribute_exists", "attribute_not_exists", "attribute_type", "contains"):
            raise ValidationError(f"Invalid operator used in KeyConditionExpression: {node.name}")
        if node.name == "size":
            raise ValidationError("KeyConditionExpressions cannot contain nested operations")
        if node.name == "begins_with" and not isinstance(node.args[0], Path):
            raise ValidationError(
                "Invalid condition in KeyConditionExpression: begins_with operator must have "
                "the key attribute as its first operand"
            )
    if isinstance(node, Between) and not isinstance(node.subject, Path):
        raise ValidationError(
            "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key "
            "attribute as its first operand"
        )
    if isinstance(node, And):
        _walk(node.left, conds)
        _walk(node.right, conds)
        return
    if isinstance(node, Compare):
        args: tuple[Any, ...] = (node.left, node.right)
    elif isinstance(node, Between):
        args = (node.subject, node.low, node.high)
    else:
        assert isinstance(node, Call)
        args = node.args
    name: str | None = None
    index = 0
    for i, arg in enumerate(args):
        if isinstance(arg, Path):
            if name is not None:
                raise ValidationError(
                    "Invalid condition in KeyConditionExpression: Multiple attribute names used "
                    "in one condition"
                )
            if len(arg.elements) > 1:
                raise ValidationError("KeyConditionExpressions cannot have conditions on nested attributes")
            name = str(arg.elements[0])
            index = i
        elif isinstance(arg, Call):
            _walk(arg, conds)
    if name is None:
        raise ValidationError("Invalid condition in KeyConditionExpression: No key attribute specified")
    if name in conds:
        raise ValidationError("KeyConditionExpressions must only contain one condition per key")
    values = [a.value for a in args if isinstance(a, Literal)]
    if isinstance(node, Compare):
        op = node.op if index == 0 else _FLIP[node.op]
        conds[name] = (_OP_NAMES[op], values)
    elif isinstance(node, Between):
        conds[name] = ("BETWEEN", values)
    else:
        conds[name] = ("BEGINS_WITH", values)


# In filters and Expected, EQ and NE compare values of every type (lists, maps, BOOL, NULL).
_ANY_TYPE_OUTSIDE_KEYS = frozenset({"EQ", "NE"})


def validate_conditions(conds: dict[str, tuple[str, list[AttributeValue]]], *, keys: bool = True) -> None:
    """Argument counts and value types per ComparisonOperator (KeyConditions and converted key
    condition expressions; with ``keys=False``: QueryFilter, ScanFilter and Expected)."""
    for op, values in conds.values():
        rule = OPERATOR_RULES.get(op)
        if rule is None:
            continue
        count, types = rule
        if (count is not None and len(values) != count) or (count is None and not values):
            raise ValidationError(
                "One or more parameter values were invalid: Invalid number of argument(s) for the "
                f"{op} ComparisonOperator"
            )
        if values:
            first = type_of(values[0])
            if any(type_of(v) != first for v in values):
                raise ValidationError(
                    "One or more parameter values were invalid: AttributeValues inside "
                    "AttributeValueList must be of same type"
                )
        if types is not None and (keys or op not in _ANY_TYPE_OUTSIDE_KEYS):
            for v in values:
                if type_of(v) not in types:
                    raise ValidationError(
                        f"One or more parameter values were invalid: ComparisonOperator {op} "
                        f"is not valid for {type_of(v)} AttributeValue type"
                    )
        if op == "BETWEEN" and (compare(values[0], values[1]) or 0) > 0:
            raise ValidationError(BETWEEN_BOUNDS)


def key_condition_from_conditions(
    conds: dict[str, tuple[str, list[AttributeValue]]], schema: KeySchema
) -> KeyCondition:
    """Check converted key conditions against the key schema (DynamoDB's Query rules)."""
    validate_conditions(conds)
    if schema.multi_attribute:
        return _multi_attribute_key_condition(conds, schema)
    if len(conds) not in (1, 2):
        raise ValidationError(CONDITIONS_LENGTH)
    attrs = [(schema.hash, True)]
    if schema.range is not None:
        attrs.append((schema.range, False))
    for attr, is_hash in attrs:
        if is_hash and schema.range is None and len(conds) > 1:
            raise ValidationError("Query key condition not supported")
        if attr.name not in conds:
            if is_hash or len(conds) > 1:
                raise ValidationError(f"Query condition missed key schema element: {attr.name}")
            continue
        op, values = conds[attr.name]
        if op in ("NULL", "NOT_NULL", "NE", "CONTAINS", "NOT_CONTAINS", "IN"):
            raise ValidationError("Attempted conditional constraint is not an indexable operation")
        if any(type_of(v) != attr.type for v in values):
            raise ValidationError(
                "One or more parameter values were invalid: Condition parameter type does not "
                "match schema type"
            )
        if is_hash and op != "EQ":
            raise ValidationError("Query key condition not supported")
    hash_value = conds[schema.hash.name][1][0]
    sort = None
    sort_name = None
    if schema.range is not None and schema.range.name in conds:
        op, values = conds[schema.range.name]
        sort = SortKeyRange(op=op, values=tuple(values))
        sort_name = schema.range.name
    return KeyCondition(
        hash_names=(schema.hash.name,), hash_values=(hash_value,), sort=sort, sort_name=sort_name
    )


_NOT_INDEXABLE = ("NULL", "NOT_NULL", "NE", "CONTAINS", "NOT_CONTAINS", "IN")


def _multi_attribute_key_condition(
    conds: dict[str, tuple[str, list[AttributeValue]]], schema: KeySchema
) -> KeyCondition:
    """A multi-attribute index key: every partition-key attribute by equality, then sort-key
    attributes left to right by equality, the last one given with any key condition."""
    attrs = schema.attrs
    if len(conds) > len(attrs):
        raise ValidationError(f"Conditions can be of length 1 to {len(attrs)} only for this key schema")
    for op, _values in conds.values():
        if op in _NOT_INDEXABLE:
            raise ValidationError("Attempted conditional constraint is not an indexable operation")
    missing = [a.name for a in attrs if a.name not in conds]
    for a in schema.hash_attrs:
        if a.name not in conds:
            raise ValidationError(f"Query condition missed key schema element: {a.name}")
    names = {a.name for a in attrs}
    stray = [n for n in conds if n not in names]
    if stray:
        raise ValidationError(f"Query condition missed key schema element: {missing[0]}")
    given = [a for a in schema.range_attrs if a.name in conds]
    ranges = schema.range_attrs
    if given and given != list(ranges[: len(given)]):
        gap = next(a.name for a in ranges if a.name not in conds)
        raise ValidationError(
            f"Query condition missed key schema element: {gap}: sort key attributes must be "
            "specified in order, without skipping one"
        )
    for a in schema.hash_attrs + tuple(given):
        op, values = conds[a.name]
        if any(type_of(v) != a.type for v in values):
            raise ValidationError(
                "One or more parameter values were invalid: Condition parameter type does not "
                "match schema type"
            )
    for a in schema.hash_attrs:
        if conds[a.name][0] != "EQ":
            raise ValidationError("Query key condition not supported")
    for a in given[:-1]:
        if conds[a.name][0] != "EQ":
            raise ValidationError(
                f"Query key condition not supported: only the last sort key attribute given may "
                f"have a range condition; sort key attribute {a.name} must use the = operator"
            )
    sort = None
    sort_name = None
    if given:
        op, values = conds[given[-1].name]
        prefix = tuple(conds[a.name][1][0] for a in given[:-1])
        sort = SortKeyRange(op=op, values=tuple(values), prefix=prefix)
        sort_name = given[-1].name
    return KeyCondition(
        hash_names=tuple(a.name for a in schema.hash_attrs),
        hash_values=tuple(conds[a.name][1][0] for a in schema.hash_attrs),
        sort=sort,
        sort_name=sort_name,
    )


def index_key_attributes(table: TableDef) -> list[tuple[str, str, str]]:
    """(attribute, type, index name) of every index key attribute, in DynamoDB's order:
    global indexes (partition and sort key), then local indexes (sort key)."""
    out: list[tuple[str, str, str]] = []
    for ix in table.global_indexes:
        out.extend((a.name, a.type, ix.name) for a in ix.key_schema.attrs)
    for ix in table.local_indexes:
        out.extend((a.name, a.type, ix.name) for a in ix.key_schema.range_attrs)
    return out


def check_key_paths(nested_heads: tuple[str, ...] | list[str], table: TableDef) -> None:
    """Refuse ``a.b`` / ``a[0]`` paths below a table or index key attribute ``a``."""
    if not nested_heads:
        return
    heads = set(nested_heads)
    for name in table.key_schema.names:
        if name in heads:
            raise ValidationError(
                "Key attributes must be scalars; list random access '[]' and map lookup '.' "
                f"are not allowed: Key: {name}"
            )
    for name, _type, _index in index_key_attributes(table):
        if name in heads:
            raise ValidationError(
                "Key attributes must be scalars; list random access '[]' and map lookup '.' "
                f"are not allowed: IndexKey: {name}"
            )
