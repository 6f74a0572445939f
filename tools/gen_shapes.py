"""Generate ``quorumdb/api/shapes.json`` (DynamoDB) and ``quorumdb/api/streams_shapes.json``
(DynamoDB Streams): the request-validation spec of every served operation.

The spec comes from botocore's models of the DynamoDB and DynamoDB Streams APIs (types, required members, lengths,
ranges, enums, patterns). DynamoDB's own validator differs from the published model in a few
places and reports its errors in its own member order; the tables below (ORDER, OVERRIDES)
record those differences as observed behaviour (the order and constraints dynalite reproduces,
whose messages were checked against the real service).

Run after upgrading botocore:  .venv/bin/python tools/gen_shapes.py
The runtime only reads the generated JSON; it never imports botocore.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import botocore

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "quorumdb" / "api" / "shapes.json"
STREAMS_OUT = ROOT / "quorumdb" / "api" / "streams_shapes.json"
STREAMS_OPERATIONS = ["DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"]

OPERATIONS = [
    "BatchExecuteStatement",
    "BatchGetItem",
    "BatchWriteItem",
    "CreateBackup",
    "CreateTable",
    "DeleteBackup",
    "DeleteItem",
    "DeleteTable",
    "DescribeBackup",
    "DescribeContinuousBackups",
    "DescribeEndpoints",
    "DescribeLimits",
    "DescribeTable",
    "DescribeTimeToLive",
    "ExecuteStatement",
    "ExecuteTransaction",
    "GetItem",
    "ListBackups",
    "ListTables",
    "ListTagsOfResource",
    "PutItem",
    "Query",
    "RestoreTableFromBackup",
    "RestoreTableToPointInTime",
    "Scan",
    "TagResource",
    "TransactGetItems",
    "TransactWriteItems",
    "UntagResource",
    "UpdateContinuousBackups",
    "UpdateItem",
    "UpdateTable",
    "UpdateTimeToLive",
]

# Control-plane operations where DynamoDB checks TableName before everything else, with
# "The parameter 'TableName' is required but was not present in the request" and
# "TableName must be at least 3 characters long and at most 255 characters long".
TABLE_NAME_FIRST = {
    "CreateTable",
    "DeleteTable",
    "DescribeTable",
    "DescribeTimeToLive",
    "UpdateTable",
    "UpdateTimeToLive",
}

# DynamoDB's member order (it decides which error comes first and the order of aggregated
# messages). Members not listed follow in botocore's order.
ORDER_BY_SHAPE: dict[str, list[str]] = {
    "ProvisionedThroughput": ["WriteCapacityUnits", "ReadCapacityUnits"],
    "KeySchemaElement": ["AttributeName", "KeyType"],
    "AttributeDefinition": ["AttributeName", "AttributeType"],
    "Projection": ["ProjectionType", "NonKeyAttributes"],
    "ExpectedAttributeValue": ["AttributeValueList", "ComparisonOperator", "Exists", "Value"],
    "Condition": ["AttributeValueList", "ComparisonOperator"],
    "AttributeValueUpdate": ["Action", "Value"],
    "Tag": ["Key", "Value"],
    "WriteRequest": ["DeleteRequest", "PutRequest"],
    "KeysAndAttributes": [
        "Keys",
        "AttributesToGet",
        "ConsistentRead",
        "ProjectionExpression",
        "ExpressionAttributeNames",
    ],
    "LocalSecondaryIndex": ["IndexName", "KeySchema", "Projection"],
    "GlobalSecondaryIndex": ["IndexName", "KeySchema", "Projection", "ProvisionedThroughput"],
    "GlobalSecondaryIndexUpdate": ["Update", "Create", "Delete"],
    "UpdateGlobalSecondaryIndexAction": ["IndexName", "ProvisionedThroughput"],
    "CreateGlobalSecondaryIndexAction": [
        "Projection",
        "IndexName",
        "ProvisionedThroughput",
        "KeySchema",
    ],
}
ORDER_BY_PATH: dict[str, list[str]] = {
    "BatchGetItem": ["ReturnConsumedCapacity", "RequestItems"],
    "BatchWriteItem": ["ReturnConsumedCapacity", "ReturnItemCollectionMetrics", "RequestItems"],
    "CreateTable": [
        "AttributeDefinitions",
        "TableName",
        "BillingMode",
        "ProvisionedThroughput",
        "KeySchema",
        "LocalSecondaryIndexes",
        "GlobalSecondaryIndexes",
    ],
    "DeleteItem": [
        "ReturnConsumedCapacity",
        "TableName",
        "ReturnValues",
        "ReturnItemCollectionMetrics",
        "Key",
        "ConditionalOperator",
        "Expected",
        "ConditionExpression",
        "ExpressionAttributeValues",
        "ExpressionAttributeNames",
    ],
    "GetItem": [
        "ReturnConsumedCapacity",
        "AttributesToGet",
        "TableName",
        "Key",
        "ConsistentRead",
        "ProjectionExpression",
        "ExpressionAttributeNames",
    ],
    "ListTables": ["Limit", "ExclusiveStartTableName"],
    "PutItem": [
        "ReturnConsumedCapacity",
        "TableName",
        "Item",
        "ConditionalOperator",
        "Expected",
        "ReturnValues",
        "ReturnItemCollectionMetrics",
        "ConditionExpression",
        "ExpressionAttributeValues",
        "ExpressionAttributeNames",
    ],
    "Query": [
        "Select",
        "IndexName",
        "ReturnConsumedCapacity",
        "QueryFilter",
        "TableName",
        "ConditionalOperator",
        "AttributesToGet",
        "Limit",
        "KeyConditions",
        "ExclusiveStartKey",
        "ConsistentRead",
        "ScanIndexForward",
        "KeyConditionExpression",
        "FilterExpression",
        "ProjectionExpression",
        "ExpressionAttributeValues",
        "ExpressionAttributeNames",
    ],
    "Query.KeyConditions{}": ["ComparisonOperator", "AttributeValueList"],
    "Scan": [
        "Select",
        "IndexName",
        "TotalSegments",
        "ReturnConsumedCapacity",
        "TableName",
        "ConditionalOperator",
        "ScanFilter",
        "Segment",
        "Limit",
        "AttributesToGet",
        "ExclusiveStartKey",
        "FilterExpression",
        "ProjectionExpression",
        "ExpressionAttributeValues",
        "ExpressionAttributeNames",
    ],
    "TagResource": ["ResourceArn", "Tags"],
    "UntagResource": ["ResourceArn", "TagKeys"],
    "UpdateItem": [
        "ReturnConsumedCapacity",
        "TableName",
        "ReturnItemCollectionMetrics",
        "ReturnValues",
        "Key",
        "ConditionalOperator",
        "Expected",
        "AttributeUpdates",
        "ConditionExpression",
        "UpdateExpression",
        "ExpressionAttributeValues",
        "ExpressionAttributeNames",
    ],
    "UpdateTable": ["TableName", "ProvisionedThroughput", "BillingMode", "GlobalSecondaryIndexUpdates"],
}

MAX_KEY_ATTRIBUTES = 4
GSI_KEY_SCHEMAS = {
    "CreateTable.GlobalSecondaryIndexes[].KeySchema",
    "UpdateTable.GlobalSecondaryIndexUpdates[].Create.KeySchema",
}

TABLE_NAME_RULES = {"min": 3, "max": 255, "re": "[a-zA-Z0-9_.-]+"}
_DROP = None  # marker: remove the constraint

# Constraint differences from botocore, by path ("Op.Member[].Member{}"); "*" matches any op.
OVERRIDES: dict[str, dict[str, Any]] = {
    "CreateTable.AttributeDefinitions": {"nn": 1},
    "CreateTable.KeySchema": {"nn": 1},
    # Index key types are checked by CreateTable itself ("Invalid KeySchema: ...").
    "CreateTable.LocalSecondaryIndexes[].KeySchema[].KeyType": {"enum": _DROP},
    "CreateTable.GlobalSecondaryIndexes[].KeySchema[].KeyType": {"enum": _DROP},
    "UpdateTable.GlobalSecondaryIndexUpdates[].Create.KeySchema[].KeyType": {"enum": _DROP},
    # The 100-attributes-across-indexes rule is checked by CreateTable with its own message.
    "CreateTable.LocalSecondaryIndexes[].Projection.NonKeyAttributes": {"max": _DROP},
    "CreateTable.GlobalSecondaryIndexes[].Projection.NonKeyAttributes": {"max": _DROP},
    "UpdateTable.GlobalSecondaryIndexUpdates[].Create.Projection.NonKeyAttributes": {"max": _DROP},
    "*.AttributesToGet": {"max": 255},
    "BatchGetItem.RequestItems{}.AttributesToGet": {"max": 255},
    "BatchGetItem.RequestItems": {
        "max": _DROP,
        "keys": [["max", 255], ["min", 3], ["re", "[a-zA-Z0-9_.-]+"]],
        "arn": 1,  # keys may be table ARNs
    },
    "BatchWriteItem.RequestItems": {
        "max": _DROP,
        "keys": [["max", 255], ["min", 3], ["re", "[a-zA-Z0-9_.-]+"]],
        "arn": 1,
        "values": [["max", 25], ["min", 1]],
    },
    "BatchWriteItem.RequestItems{}": {"min": _DROP, "max": _DROP},
    # The tagging operations check these themselves, in DynamoDB's order and words.
    "TagResource.ResourceArn": {"nn": _DROP, "min": _DROP, "max": _DROP},
    "TagResource.Tags": {"nn": _DROP},
    "UntagResource.ResourceArn": {"nn": _DROP, "min": _DROP, "max": _DROP},
    "UntagResource.TagKeys": {"nn": _DROP},
    "ListTagsOfResource.ResourceArn": {"nn": _DROP, "min": _DROP, "max": _DROP},
    # The backup operations take a table name or ARN here (botocore's TableArn shape).
    "CreateBackup.TableName": {"min": 1, "max": 1024, "re": _DROP},
    "ListBackups.TableName": {"min": 1, "max": 1024, "re": _DROP},
    "UpdateContinuousBackups.TableName": {"min": 1, "max": 1024, "re": _DROP},
    "DescribeContinuousBackups.TableName": {"min": 1, "max": 1024, "re": _DROP},
    # DynamoDB Streams: GetRecords returns at most 1000 records and refuses a larger Limit.
    "GetRecords.Limit": {"le": 1000},
}

# The order in which DynamoDB lists an enum's values in "Member must satisfy enum value set".
ENUM_ORDER = [
    ["INDEXES", "TOTAL", "NONE"],
    ["SIZE", "NONE"],
    ["B", "N", "S"],
    ["PROVISIONED", "PAY_PER_REQUEST"],
    ["HASH", "RANGE"],
    ["ALL", "INCLUDE", "KEYS_ONLY"],
    ["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"],
    ["OR", "AND"],
    ["IN", "NULL", "BETWEEN", "LT", "NOT_CONTAINS", "EQ", "GT", "NOT_NULL", "NE", "LE", "BEGINS_WITH", "GE", "CONTAINS"],
    ["SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"],
]
ENUM_BY_SET = {frozenset(e): e for e in ENUM_ORDER}

JAVA_PKG = "com.amazonaws.dynamodb.v20120810."
NUM_KIND = {"integer": "Integer", "long": "Long", "double": "Double"}


def java_type(shapes: dict[str, Any], name: str) -> str:
    s = shapes[name]
    t = s["type"]
    if t == "structure":
        return JAVA_PKG + name
    if t == "list":
        return f"java.util.List<{java_type(shapes, s['member']['shape'])}>"
    if t == "map":
        return f"java.util.Map<java.lang.String, {java_type(shapes, s['value']['shape'])}>"
    if t == "string":
        return "java.lang.String"
    return "java.lang." + NUM_KIND.get(t, t.capitalize())


def build(shapes: dict[str, Any], name: str, path: str, op: str, in_collection: bool) -> dict[str, Any]:
    s = shapes[name]
    t = s["type"]
    node: dict[str, Any]
    if name == "AttributeValue":
        return {"k": "av"}
    if t == "structure":
        members = s["members"]
        order = ORDER_BY_PATH.get(path) or ORDER_BY_SHAPE.get(name) or []
        names = [m for m in order if m in members] + [m for m in members if m not in order]
        required = set(s.get("required", []))
        out_members = []
        for m in names:
            sub = build(shapes, members[m]["shape"], f"{path}.{m}", op, False)
            if m == "TableName" and members[m]["shape"] in ("TableArn", "TableName"):
                sub = {"k": "str", **TABLE_NAME_RULES}
                if members[m]["shape"] == "TableArn":
                    sub["arn"] = 1  # a table ARN is accepted in place of the name
            if m in required:
                sub["nn"] = 1
            if path == op and m == "TableName" and op in TABLE_NAME_FIRST:
                # Checked first, with its own messages; only the pattern stays aggregated.
                sub = {"k": "str", "re": TABLE_NAME_RULES["re"], "arn": 1}
            apply_overrides(sub, f"{path}.{m}", op)
            out_members.append([m, sub])
        node = {"k": "struct", "c": name, "m": out_members}
    elif t == "list":
        elem = build(shapes, s["member"]["shape"], path + "[]", op, True)
        apply_overrides(elem, path + "[]", op)
        node = {"k": "list", "e": elem}
        if name == "KeySchema":
            # A table or local index has a partition key and an optional sort key; a global
            # index up to four of each (multi-attribute keys), checked by the handlers.
            node["max"] = 2 * MAX_KEY_ATTRIBUTES if path in GSI_KEY_SCHEMAS else 2
    elif t == "map":
        val = build(shapes, s["value"]["shape"], path + "{}", op, True)
        apply_overrides(val, path + "{}", op)
        node = {"k": "map", "v": val, "jt": java_type(shapes, s["value"]["shape"])}
    elif t == "string":
        node = {"k": "str"}
        if "enum" in s:
            node["enum"] = ENUM_BY_SET.get(frozenset(s["enum"]), s["enum"])
        if "pattern" in s:
            node["re"] = s["pattern"]
    elif t in NUM_KIND:
        node = {"k": t}
        if "min" in s:
            node["ge"] = s["min"]
        if "max" in s:
            node["le"] = s["max"]
    elif t == "boolean":
        node = {"k": "bool"}
    elif t == "blob":
        node = {"k": "blob"}
    elif t == "timestamp":
        node = {"k": "double"}
    else:
        raise SystemExit(f"unknown shape type {t} at {path}")
    if t in ("string", "list", "map"):
        if s.get("min", 0) > 0:
            node["min"] = s["min"]
        if "max" in s and "max" not in node:
            node["max"] = s["max"]
    if in_collection and t in ("list", "map"):
        node["p"] = 1  # a collection inside a collection: DynamoDB reports it as parameterized
    return node


def apply_overrides(node: dict[str, Any], path: str, op: str) -> None:
    for key in (path, "*" + path[len(op) :]):
        for k, v in OVERRIDES.get(key, {}).items():
            if v is _DROP:
                node.pop(k, None)
            else:
                node[k] = v


def build_doc(service: str = "dynamodb", operations: list[str] = OPERATIONS) -> dict[str, Any]:
    """The spec document, as written to shapes.json (or streams_shapes.json)."""
    model_path = Path(botocore.__file__).parent / "data" / service / "2012-08-10" / "service-2.json.gz"
    model = json.loads(gzip.decompress(model_path.read_bytes()))
    shapes = model["shapes"]
    ops: dict[str, Any] = {}
    for op in operations:
        input_shape = model["operations"][op].get("input", {}).get("shape")
        body = build(shapes, input_shape, op, op, False) if input_shape else {"k": "struct", "c": op, "m": []}
        entry: dict[str, Any] = {"body": body}
        if op in TABLE_NAME_FIRST:
            entry["tn"] = "TableName"
        ops[op] = entry
    return {
        "source": f"botocore {botocore.__version__} {service} 2012-08-10, generated by tools/gen_shapes.py",
        "ops": ops,
    }


def main() -> int:
    for out, doc in ((OUT, build_doc()), (STREAMS_OUT, build_doc("dynamodbstreams", STREAMS_OPERATIONS))):
        out.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=False) + "\n")
        print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes, {len(doc['ops'])} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
