"""The ledger's admin actions on keys and budgets, served in-process over real gRPC with the
ledger's own caller check: rotating a key, deleting a budget, and the last use of keys that call
only the ledger (admin, finance, viewer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from tierlift.core.grpc_server import ServerCalls
from tierlift.core.identity import Authenticate, KeyBook, key_interceptors
from tierlift.ledger._budgets import BudgetWatcher
from tierlift.ledger._keys import KeyKeeper, KeyStore, key_row
from tierlift.ledger._quality import QualityStore
from tierlift.ledger._schema import metadata
from tierlift.ledger._servicer import LedgerServicer
from tierlift.ledger._store import LedgerStore, make_engine
from tierlift.ledger.main import LEDGER_ROLES
from tierlift.router._budgets import BudgetBook
from tierlift.v1 import events_pb2, ledger_pb2, ledger_pb2_grpc


@dataclass
class Bus:
    published: list[tuple[str, Any, str]] = field(default_factory=list)

    async def publish(self, subject: str, event: Any, event_id: str) -> None:
        self.published.append((subject, event, event_id))


@dataclass
class Ledger:
    stub: ledger_pb2_grpc.LedgerStub
    keys: KeyKeeper
    bus: Bus
    admin_key: str
    admin_id: str


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    metadata.create_all(engine)
    store, bus = LedgerStore(engine), Bus()
    keys = KeyKeeper(KeyStore(engine), bus, KeyBook())  # type: ignore[arg-type]
    row, admin_key = key_row(ledger_pb2.KeyRequest(role="admin", description="tierlift up"), datetime.now(UTC))
    keys.store.create(row)
    await keys.publish_all()
    server = grpc.aio.server(interceptors=[ServerCalls(Authenticate(keys.book, LEDGER_ROLES))])
    servicer = LedgerServicer(store, BudgetWatcher(bus, store), keys, QualityStore(engine))  # type: ignore[arg-type]
    ledger_pb2_grpc.add_LedgerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=key_interceptors(admin_key))
    try:
        yield Ledger(ledger_pb2_grpc.LedgerStub(channel), keys, bus, admin_key, row["key_id"])
    finally:
        await channel.close()
        await server.stop(None)
        engine.dispose()


async def test_an_admin_key_that_only_calls_the_ledger_is_seen_used(ledger: Ledger) -> None:
    await ledger.stub.CreateKey(ledger_pb2.KeyRequest(tenant="acme", role="app"))
    listed = await ledger.stub.ListKeys(ledger_pb2.KeyQuery())
    (admin,) = [k for k in listed.keys if k.key_id == ledger.admin_id]
    assert admin.last_used_at  # was "last used never" after it had created keys
    before = datetime.fromisoformat(admin.last_used_at)
    await ledger.keys.record_own_use()  # the ledger's key sync: the ListKeys call itself
    (again,) = [k for k in ledger.keys.store.rows() if k["key_id"] == ledger.admin_id]
    assert again["last_used_at"].replace(tzinfo=UTC) >= before


async def test_a_rotated_key_is_replaced_and_the_old_one_works_for_the_grace_period(ledger: Ledger) -> None:
    request = ledger_pb2.KeyRequest(tenant="acme", role="app", workloads=["faq"], description="billing app")
    old = await ledger.stub.CreateKey(request)
    rotated = await ledger.stub.RotateKey(ledger_pb2.KeyRotation(key_id=old.key.key_id, grace_s=3600))
    new = rotated.key
    assert new.key_id != old.key.key_id and rotated.secret.startswith(f"tl_{new.key_id}_")
    assert (new.tenant, new.role, list(new.workloads), new.description) == ("acme", "app", ["faq"], "billing app")
    assert not new.expires_at
    book = ledger.keys.book  # what every service learns from the published states
    assert book.authenticate(rotated.secret) is not None and book.authenticate(old.secret) is not None
    (retired,) = [k for k in (await ledger.stub.ListKeys(ledger_pb2.KeyQuery())).keys if k.key_id == old.key.key_id]
    expires = datetime.fromisoformat(retired.expires_at)
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    states = [e for s, e, _ in ledger.bus.published if isinstance(e, events_pb2.KeyState)]
    (old_state,) = [s for s in states if s.key_id == old.key.key_id and s.HasField("expires_at")]
    assert old_state.event_id != f"key.{old.key.key_id}.active"  # not a duplicate NATS would drop
    audit = await ledger.stub.ListAudit(ledger_pb2.AuditQuery())
    assert [(e.action, e.target, e.actor) for e in audit.entries if e.action == "key.rotated"] == [
        ("key.rotated", old.key.key_id, ledger.admin_id)
    ]


async def test_rotating_an_unknown_or_revoked_key_is_refused(ledger: Ledger) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await ledger.stub.RotateKey(ledger_pb2.KeyRotation(key_id="nosuch"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    created = await ledger.stub.CreateKey(ledger_pb2.KeyRequest(tenant="acme", role="app"))
    await ledger.stub.RevokeKey(ledger_pb2.KeyId(key_id=created.key.key_id))
    with pytest.raises(grpc.aio.AioRpcError) as revoked:
        await ledger.stub.RotateKey(ledger_pb2.KeyRotation(key_id=created.key.key_id))
    assert revoked.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as too_long:
        await ledger.stub.RotateKey(ledger_pb2.KeyRotation(key_id=ledger.admin_id, grace_s=10**9))
    assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "grace_s" in (too_long.value.details() or "")


async def test_a_deleted_budget_is_gone_audited_and_no_longer_closes_a_router(ledger: Ledger) -> None:
    budget = ledger_pb2.Budget(tenant="acme", period="day", limit_usd="0.000000000001", action="reject")
    await ledger.stub.SetBudget(budget)
    (published,) = [e for _, e, _ in ledger.bus.published if isinstance(e, events_pb2.BudgetState)]
    spent = events_pb2.BudgetState()
    spent.CopyFrom(published)
    spent.state, spent.version = "hard_exceeded", published.version + 1  # as after a first request
    book = BudgetBook()
    book.apply(spent)
    assert book.exhausted("acme", "faq")
    deleted = await ledger.stub.DeleteBudget(ledger_pb2.Budget(tenant="acme", period="day"))
    assert (deleted.tenant, deleted.period, deleted.action) == ("acme", "day", "reject")
    assert not (await ledger.stub.ListBudgets(ledger_pb2.BudgetQuery(tenant="acme"))).budgets
    last = [e for _, e, _ in ledger.bus.published if isinstance(e, events_pb2.BudgetState)][-1]
    assert last.state == "deleted"
    book.apply(last)
    assert not book.exhausted("acme", "faq")  # routers stop enforcing it
    audit = await ledger.stub.ListAudit(ledger_pb2.AuditQuery())
    assert [e.target for e in audit.entries if e.action == "budget.deleted"] == ["acme/*/day"]
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await ledger.stub.DeleteBudget(ledger_pb2.Budget(tenant="acme", period="day"))
    assert again.value.code() == grpc.StatusCode.NOT_FOUND
