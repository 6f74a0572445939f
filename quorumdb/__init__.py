"""QuorumDB: a durable, DynamoDB-compatible database after Amazon's Dynamo and DynamoDB."""

__version__ = "0.1.0"
__all__ = ["__version__"]
