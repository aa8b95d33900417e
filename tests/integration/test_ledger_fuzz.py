"""Property: any message to any Ledger RPC (fields drawn from the proto descriptors) gets a
deliberate status, never UNKNOWN or INTERNAL, and a refused SetBudget stores nothing. A real
SQLite file and a real PostgreSQL (each refuses different things: PostgreSQL's text no NUL) and
a real nats-server behind an in-process gRPC server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings

from tests.integration.test_ledger_databases import postgres_url, store  # noqa: F401 (fixtures)
from tests.unit.test_rpc_fuzz import NEVER, messages
from tierlift.core.bus import EventBus
from tierlift.core.bus_layout import bootstrap
from tierlift.core.grpc_server import ServerCalls
from tierlift.core.identity import Authenticate, KeyBook, key_interceptors
from tierlift.core.ids import nul_field
from tierlift.ledger import BudgetWatcher, LedgerStore
from tierlift.ledger._keys import KeyKeeper, KeyStore, key_row
from tierlift.ledger._quality import QualityStore
from tierlift.ledger._servicer import LedgerServicer
from tierlift.ledger.main import LEDGER_ROLES
from tierlift.v1 import ledger_pb2, ledger_pb2_grpc

RPCS = [
    ("CreateKey", ledger_pb2.KeyRequest),
    ("ListKeys", ledger_pb2.KeyQuery),
    ("RevokeKey", ledger_pb2.KeyId),
    ("RotateKey", ledger_pb2.KeyRotation),
    ("ListAudit", ledger_pb2.AuditQuery),
    ("GetSpend", ledger_pb2.SpendQuery),
    ("ListAttempts", ledger_pb2.AttemptQuery),
    ("GetReport", ledger_pb2.SpendQuery),
    ("SetBudget", ledger_pb2.Budget),
    ("DeleteBudget", ledger_pb2.Budget),
    ("ListBudgets", ledger_pb2.BudgetQuery),
    ("GetQuality", ledger_pb2.QualityQuery),
    ("GetRolloutEvidence", ledger_pb2.EvidenceQuery),
    ("ListOutcomes", ledger_pb2.OutcomeQuery),
    ("ListRequests", ledger_pb2.RequestQuery),
]


@pytest.fixture
async def ledger(nats_url: str, store: LedgerStore) -> AsyncIterator[tuple[Any, LedgerStore]]:  # noqa: F811
    bus = await EventBus.connect(nats_url, name="ledger-fuzz")
    await bootstrap(bus.js)
    keys = KeyKeeper(KeyStore(store.engine), bus, KeyBook())
    row, admin_key = key_row(ledger_pb2.KeyRequest(role="admin"), datetime.now(UTC))
    keys.store.create(row)
    await keys.publish_all()
    auth = Authenticate(keys.book, LEDGER_ROLES)
    server = grpc.aio.server(interceptors=[ServerCalls(auth, check=nul_field)])  # as the ledger's main
    servicer = LedgerServicer(store, BudgetWatcher(bus, store), keys, QualityStore(store.engine))
    ledger_pb2_grpc.add_LedgerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=key_interceptors(admin_key))
    try:
        yield ledger_pb2_grpc.LedgerStub(channel), store
    finally:
        await channel.close()
        await server.stop(None)
        await bus.drain()


@pytest.mark.parametrize(("rpc", "cls"), RPCS)
async def test_any_ledger_request_gets_a_deliberate_status(
    ledger: tuple[Any, LedgerStore], rpc: str, cls: type[Any]
) -> None:
    stub, ledger_store = ledger
    outcomes: list[tuple[Any, grpc.StatusCode]] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(messages(cls.DESCRIPTOR, cls))
    def collect(request: Any) -> None:
        outcomes.append((request, grpc.StatusCode.OK))

    collect()  # draw the examples first: the calls need this test's event loop
    for i, (request, _) in enumerate(outcomes):
        budgets_before = len(ledger_store.budgets())
        try:
            await getattr(stub, rpc)(request, timeout=10)
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
        outcomes[i] = (request, code)
        assert code not in NEVER, (rpc, request, code)
        if rpc == "SetBudget" and code == grpc.StatusCode.INVALID_ARGUMENT:
            assert len(ledger_store.budgets()) == budgets_before
    assert len(outcomes) >= 30  # hypothesis drew enough examples
