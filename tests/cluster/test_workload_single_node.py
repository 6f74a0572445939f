"""The history workload itself, on a single node: its histories must check as linearizable, and
a history doctored to contain a stale read must not (so the cluster tests can fail)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from quorumdb.sim.checkers.history import OpKind, Outcome
from quorumdb.sim.checkers.linearizability import check_history
from tests.cluster.workload import RegisterClients, client_for
from tests.integration.helpers import ServerProcess


def test_single_node_histories_are_linearizable_and_a_stale_read_is_caught(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=str(tmp_path / "data"))
    endpoint = server.start()
    try:
        client = client_for(endpoint)
        client.create_table(TableName="reg", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        clients = RegisterClients([endpoint], "reg", ["a", "b"], processes=4)
        clients.start()
        deadline = time.monotonic() + 30
        while clients.done < 400 and time.monotonic() < deadline:  # enough, even on a busy machine
            time.sleep(0.2)
        history = clients.stop()
    finally:
        server.stop()
    history.close()
    assert clients.errors == []
    kinds = {op.kind for op in history.ops if op.outcome is Outcome.OK}
    assert kinds == {OpKind.GET, OpKind.PUT, OpKind.CAS} and len(history.ops) > 50
    assert check_history(history.ops).ok is True
    # Make one read return the value the key held before the last write preceding it.
    ops = sorted(history.ops, key=lambda o: o.invoke)
    for i, op in enumerate(ops):
        if op.kind is OpKind.GET and op.outcome is Outcome.OK:
            writes = [w for w in ops[:i] if w.key == op.key and w.kind is OpKind.PUT and w.outcome is Outcome.OK
                      and w.complete is not None and w.complete < op.invoke]
            if len(writes) >= 2 and writes[-1].value != writes[-2].value and op.result == writes[-1].value:
                concurrent = [w for w in ops if w.key == op.key and w.kind is not OpKind.GET and w is not writes[-1]
                              and w.invoke < op.complete and (w.complete is None or w.complete > writes[-1].complete)]
                if concurrent:
                    continue
                stale = dataclasses.replace(op, result=writes[-2].value)
                doctored = [stale if o is op else o for o in history.ops]
                assert check_history(doctored).ok is False
                return
    raise AssertionError("no read suitable for doctoring was found")
