"""Transactions across partitions and tables: a sans-I/O core after DynamoDB's (USENIX ATC 2023,
"Distributed Transactions at Scale in Amazon DynamoDB"): timestamp ordering, two-phase
prepare/commit over the partitions' leaders, a ledger that decides each transaction exactly
once, recovery of transactions whose coordinator died, two-phase read-only transactions and
ClientRequestToken idempotency.

The pieces and who runs them:

* ``Participant`` (``participant.py``): one per partition, on its leader. ``step`` /
  ``write`` / ``tick`` -> ``ready()``: persist records (``PutPrepared``, ``CommitPrepared``,
  ``DropPrepared``, ``PutItem``) -> send messages and write replies. Items are read through an
  injected ``ItemStore`` and actions evaluated by an injected ``Evaluator``.
* ``WriteTxn``, ``ReadTxn``, ``RecoveryTxn`` (``coordinator.py``): one per request (or per
  recovery), on any node, with a ``TxnClock`` per node. ``step`` / ``tick`` -> ``ready()``:
  send messages, answer the client once (``TxnResult``), drop the core when done. Nothing
  durable: the ledger holds what must survive a coordinator.
* ``TxnLedger`` (``ledger.py``): a deterministic state machine for a replicated group:
  ``apply(request, now_ms) -> LedgerAnswer``; ``stale(now_ms)`` feeds the recovery sweep.

Wiring into the cluster (what the drivers must provide):

* Addresses: coordinator node ids (with their incarnation, also the ``TxnClock`` node), partition
  ids (route to the partition's current leader; a NOT_LEADER there means resend later: the core
  resends on its own), and one ledger address (the ledger group's leader).
* Participant: ``ItemStore.read`` over the partition's applied state plus its pending overlay,
  returning the item with a version (its last write's log index) and the write timestamp (kept
  with the item, and kept on delete); ``Evaluator.evaluate`` runs the action's condition and
  update (the payload must be msgpack-able: a write recipe of ``quorumdb.db.recipes``, i.e. the
  action's request JSON that the leader rebuilds into its mutation) and returns the new item
  image as the effect. Each Ready's records
  go into the partition's log as one command; its messages and replies leave once that command
  is applied. Prepared records are part of the partition's replicated state, so a new leader
  builds its ``Participant(prepared=...)`` from them. Plain writes must pass through
  ``Participant.write`` on the leader, in log order with the transactional records.
* Coordinators: the API handler builds a ``WriteRequest`` / ``ReadRequest`` (actions routed to
  partitions, ``fingerprint`` = ``request_fingerprint(req).hex()``), runs the core on the node
  that received the request and maps the ``TxnResult`` to the response or error
  (``TxnStatus.error_type``, ``TxnResult.dynamo_reasons()``); capacity stays the handler's.
  A node receiving ``RecoverRequest`` starts a ``RecoveryTxn`` unless it already runs a core for
  that transaction.
* Ledger: a replicated group applying ``(request, now_ms)`` commands to ``TxnLedger.apply``; its
  leader answers, and every ``ledger_stale_ms / 2`` sends a ``RecoverRequest`` for each record
  of ``stale(now_ms)`` to some coordinator node.

Messages (``messages.py``) travel as ``to_wire(msg)`` / ``from_wire(raw)`` lists. This package
never imports asyncio, reads a clock or uses unseeded randomness; it imports nothing from
``runtime``, ``sim``, ``api``, ``db`` or ``storage``.
"""

from .config import TOKEN_TTL_MS, TxnConfig
from .coordinator import (
    CANCELLED_BY_RECOVERY,
    CoordinatorReady,
    ReadPhase,
    ReadRequest,
    ReadTxn,
    RecoveryPhase,
    RecoveryTxn,
    TxnClock,
    WritePhase,
    WriteRequest,
    WriteTxn,
)
from .ledger import TxnLedger
from .messages import (
    Decision,
    DecisionAck,
    ItemsRead,
    LedgerAnswer,
    LedgerBegin,
    LedgerComplete,
    LedgerDecide,
    LedgerOp,
    LedgerStatus,
    Message,
    Prepare,
    ReadItems,
    RecoverRequest,
    Verified,
    Verify,
    Vote,
    from_wire,
    to_wire,
)
from .participant import (
    CommitPrepared,
    DropPrepared,
    Evaluator,
    ItemStore,
    Participant,
    ParticipantReady,
    ParticipantRecord,
    PutItem,
    PutPrepared,
    WriteReply,
)
from .values import (
    NO_REASON,
    ZERO_TS,
    ActionKind,
    Address,
    CancellationReason,
    Evaluation,
    ItemRef,
    ItemVersion,
    LedgerRecord,
    PartitionId,
    PreparedTxn,
    ReadItem,
    ReasonCode,
    RequestId,
    Timestamp,
    TxnAction,
    TxnId,
    TxnResult,
    TxnState,
    TxnStatus,
    txn_id_of,
)

__all__ = [
    "TOKEN_TTL_MS",
    "TxnConfig",
    "CANCELLED_BY_RECOVERY",
    "CoordinatorReady",
    "ReadPhase",
    "ReadRequest",
    "ReadTxn",
    "RecoveryPhase",
    "RecoveryTxn",
    "TxnClock",
    "WritePhase",
    "WriteRequest",
    "WriteTxn",
    "TxnLedger",
    "Decision",
    "DecisionAck",
    "ItemsRead",
    "LedgerAnswer",
    "LedgerBegin",
    "LedgerComplete",
    "LedgerDecide",
    "LedgerOp",
    "LedgerStatus",
    "Message",
    "Prepare",
    "ReadItems",
    "RecoverRequest",
    "Verified",
    "Verify",
    "Vote",
    "from_wire",
    "to_wire",
    "CommitPrepared",
    "DropPrepared",
    "Evaluator",
    "ItemStore",
    "Participant",
    "ParticipantReady",
    "ParticipantRecord",
    "PutItem",
    "PutPrepared",
    "WriteReply",
    "NO_REASON",
    "ZERO_TS",
    "ActionKind",
    "Address",
    "CancellationReason",
    "Evaluation",
    "ItemRef",
    "ItemVersion",
    "LedgerRecord",
    "PartitionId",
    "PreparedTxn",
    "ReadItem",
    "ReasonCode",
    "RequestId",
    "Timestamp",
    "TxnAction",
    "TxnId",
    "TxnResult",
    "TxnState",
    "TxnStatus",
    "txn_id_of",
]
