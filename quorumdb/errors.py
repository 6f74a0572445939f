"""The one error tree of QuorumDB.

Internal code raises these typed errors; only the HTTP layer (``quorumdb.api``) turns them into
DynamoDB's ``{"__type": "<namespace>#<Type>", "message": ...}`` bodies (``body()``).
Nothing below the API layer formats JSON errors or chooses HTTP status codes by itself.

The namespace is the one DynamoDB sends: its own errors are in
``com.amazonaws.dynamodb.v20120810``; the errors of the request framework in front of it come
from ``com.amazon.coral.validate`` (ValidationException), ``com.amazon.coral.service``
(SerializationException, UnknownOperationException, the authentication errors, ...) or
``com.amazon.coral.availability`` (ThrottlingException). SerializationException and
AccessDeniedException spell their text ``Message``; an empty message is not sent at all
(e.g. UnknownOperationException).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DynamoError",
    "ValidationError",
    "SerializationError",
    "UnknownOperationError",
    "MissingAuthenticationTokenError",
    "IncompleteSignatureError",
    "InvalidSignatureError",
    "UnrecognizedClientError",
    "AccessDeniedError",
    "RequestEntityTooLargeError",
    "ResourceNotFoundError",
    "ResourceInUseError",
    "LimitExceededError",
    "ConditionalCheckFailedError",
    "DuplicateItemError",
    "ProvisionedThroughputExceededError",
    "ThrottlingError",
    "RequestLimitExceededError",
    "ItemCollectionSizeLimitExceededError",
    "TransactionCanceledError",
    "TransactionConflictError",
    "TransactionInProgressError",
    "IdempotentParameterMismatchError",
    "InternalServerError",
    "TableNotFoundError",
    "TableAlreadyExistsError",
    "TableInUseError",
    "BackupNotFoundError",
    "BackupInUseError",
    "ContinuousBackupsUnavailableError",
    "PointInTimeRecoveryUnavailableError",
    "InvalidRestoreTimeError",
    "ExpiredIteratorError",
    "TrimmedDataAccessError",
    "ERROR_PREFIX",
]

ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
CORAL_SERVICE = "com.amazon.coral.service#"
CORAL_VALIDATE = "com.amazon.coral.validate#"
CORAL_AVAILABILITY = "com.amazon.coral.availability#"


class DynamoError(Exception):
    """Base of every error a client may see. ``type_name`` is the ``__type`` suffix."""

    type_name: str = "InternalServerError"
    type_prefix: str = ERROR_PREFIX
    message_key: str = "message"
    http_status: int = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON body DynamoDB sends for this error."""
        if not self.message:
            return {"__type": self.type_prefix + self.type_name}
        return {"__type": self.type_prefix + self.type_name, self.message_key: self.message}


class ValidationError(DynamoError):
    type_name = "ValidationException"
    type_prefix = CORAL_VALIDATE


class SerializationError(DynamoError):
    type_name = "SerializationException"
    type_prefix = CORAL_SERVICE
    message_key = "Message"


class UnknownOperationError(DynamoError):
    type_name = "UnknownOperationException"
    type_prefix = CORAL_SERVICE


class MissingAuthenticationTokenError(DynamoError):
    type_name = "MissingAuthenticationTokenException"
    type_prefix = CORAL_SERVICE


class IncompleteSignatureError(DynamoError):
    type_name = "IncompleteSignatureException"
    type_prefix = CORAL_SERVICE


class InvalidSignatureError(DynamoError):
    type_name = "InvalidSignatureException"
    type_prefix = CORAL_SERVICE


class UnrecognizedClientError(DynamoError):
    type_name = "UnrecognizedClientException"
    type_prefix = CORAL_SERVICE


class AccessDeniedError(DynamoError):
    type_name = "AccessDeniedException"
    type_prefix = CORAL_SERVICE
    message_key = "Message"


class RequestEntityTooLargeError(DynamoError):
    type_name = "RequestEntityTooLargeException"
    type_prefix = CORAL_SERVICE
    http_status = 413


class ResourceNotFoundError(DynamoError):
    type_name = "ResourceNotFoundException"


class ResourceInUseError(DynamoError):
    type_name = "ResourceInUseException"


class LimitExceededError(DynamoError):
    type_name = "LimitExceededException"


class ConditionalCheckFailedError(DynamoError):
    """A condition evaluated false. ``item`` is returned when the caller asked for ALL_OLD."""

    type_name = "ConditionalCheckFailedException"

    def __init__(
        self, message: str = "The conditional request failed", item: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.item = item

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.item is not None:
            out["Item"] = self.item
        return out


class DuplicateItemError(DynamoError):
    """A PartiQL INSERT of an item whose primary key exists."""

    type_name = "DuplicateItemException"

    def __init__(self, message: str = "Duplicate primary key exists in table") -> None:
        super().__init__(message)


class ProvisionedThroughputExceededError(DynamoError):
    """Throttled. ``reasons``: DynamoDB's ``ThrottlingReasons`` (``reason``, ``resource`` ARN)."""

    type_name = "ProvisionedThroughputExceededException"

    def __init__(self, message: str = "", reasons: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.reasons:
            out["ThrottlingReasons"] = self.reasons
        return out


class ThrottlingError(DynamoError):
    type_name = "ThrottlingException"
    type_prefix = CORAL_AVAILABILITY


class RequestLimitExceededError(DynamoError):
    type_name = "RequestLimitExceeded"


class ItemCollectionSizeLimitExceededError(DynamoError):
    type_name = "ItemCollectionSizeLimitExceededException"


class TransactionCanceledError(DynamoError):
    """Carries one reason per action, in request order: ``{"Code": "None"}`` for those that passed."""

    type_name = "TransactionCanceledException"

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        codes = ", ".join(r.get("Code", "None") for r in reasons)
        super().__init__(f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]")
        self.reasons = reasons

    def body(self) -> dict[str, Any]:
        out = super().body()
        out["CancellationReasons"] = self.reasons
        return out


class TransactionConflictError(DynamoError):
    type_name = "TransactionConflictException"


class TransactionInProgressError(DynamoError):
    type_name = "TransactionInProgressException"


class IdempotentParameterMismatchError(DynamoError):
    type_name = "IdempotentParameterMismatchException"


# -- backups and point-in-time recovery ---------------------------------------------------------


class TableNotFoundError(DynamoError):
    type_name = "TableNotFoundException"


class TableAlreadyExistsError(DynamoError):
    type_name = "TableAlreadyExistsException"


class TableInUseError(DynamoError):
    type_name = "TableInUseException"


class BackupNotFoundError(DynamoError):
    type_name = "BackupNotFoundException"


class BackupInUseError(DynamoError):
    type_name = "BackupInUseException"


class ContinuousBackupsUnavailableError(DynamoError):
    type_name = "ContinuousBackupsUnavailableException"


class PointInTimeRecoveryUnavailableError(DynamoError):
    type_name = "PointInTimeRecoveryUnavailableException"


class InvalidRestoreTimeError(DynamoError):
    type_name = "InvalidRestoreTimeException"
class ExpiredIteratorError(DynamoError):
    """DynamoDB Streams: a shard iterator older than 15 minutes."""

    type_name = "ExpiredIteratorException"


class TrimmedDataAccessError(DynamoError):
    """DynamoDB Streams: a position before the oldest record still kept in the shard."""

    type_name = "TrimmedDataAccessException"


class InternalServerError(DynamoError):
    type_name = "InternalServerError"
    http_status = 500
