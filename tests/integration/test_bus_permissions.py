"""The embedded stack's NATS runs with one nkey user per service and the subject permissions of
core/nats_access.py: the server itself refuses a forged attempt or budget state from any user
but the one allowed to publish it, and nothing forged reaches the ledger."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from tests.integration.test_bus_and_ledger import attempt_event
from tierlift.core import bus as bus_module
from tierlift.core.bus import EventBus
from tierlift.core.entry import StartupError
from tierlift.devstack import Stack
from tierlift.v1 import events_pb2, ledger_pb2


async def _refused(bus: EventBus, subject: str, data: bytes) -> bool:
    """True when JetStream never stored the message (the server dropped it: no ack comes)."""
    try:
        await bus.js.publish(subject, data, timeout=1.0)
    except Exception:  # nats-py: TimeoutError, or NoRespondersError, after the server's -ERR
        return True
    return False


async def test_only_routers_publish_attempts_and_only_the_ledger_budget_states(stack: Stack) -> None:
    observer = await EventBus.connect(stack.nats_url, "observer", seed=stack.nats_seeds["observer"])
    ledger_user = await EventBus.connect(stack.nats_url, "ledger-as-attacker", seed=stack.nats_seeds["ledger"])
    router_user = await EventBus.connect(stack.nats_url, "router-as-attacker", seed=stack.nats_seeds["router"])
    forged_attempt = attempt_event("forged.attempt.0", tokens=(4 * 10**9, 4 * 10**9))
    forged_attempt.tenant = "victim"
    blocked = events_pb2.BudgetState(
        tenant="victim", period="day", state="hard_exceeded", action="reject"
    ).SerializeToString()
    try:
        attempt = forged_attempt.SerializeToString()
        assert await _refused(observer, bus_module.SUBJECT_ATTEMPT, attempt)
        assert await _refused(ledger_user, bus_module.SUBJECT_ATTEMPT, attempt)
        budget_subject = bus_module.budget_subject("victim", "", "day")
        assert await _refused(observer, budget_subject, blocked)
        assert await _refused(router_user, budget_subject, blocked)
        assert await _refused(observer, "$JS.API.STREAM.DELETE.TIERLIFT", b"")  # nor may it drop the stream

        # reading is what an observer may do: it sees the key states the ledger published
        seen: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_key(msg: Msg) -> None:
            await seen.put(msg)

        await observer.watch_latest("tierlift.keys.state.>", on_key)
        assert (await asyncio.wait_for(seen.get(), 5)).subject.startswith("tierlift.keys.state.")
    finally:
        for bus in (observer, ledger_user, router_user):
            await bus.drain()

    await asyncio.sleep(1.0)  # what the ledger would have ingested by now
    with stack.channel("ledger") as channel:
        from tierlift.v1 import ledger_pb2_grpc

        spend = ledger_pb2_grpc.LedgerStub(channel).GetSpend(ledger_pb2.SpendQuery(tenant="victim"), timeout=10)
    assert spend.total_attempts == 0


def test_a_service_without_its_nats_user_cannot_connect(stack: Stack) -> None:
    async def anonymous() -> None:
        await EventBus.connect(stack.nats_url, "anonymous")

    with pytest.raises(StartupError, match="refused this service's credentials"):
        asyncio.run(asyncio.wait_for(anonymous(), 10))


def test_the_embedded_nats_server_runs_one_go_scheduler_thread(stack: Stack) -> None:
    """devstack's nats-server shares the machine's cores with the services (GOMAXPROCS=1)."""
    environ = Path(f"/proc/{stack.procs['nats'].pid}/environ").read_bytes().split(b"\0")
    expected = os.environ.get("GOMAXPROCS", "1").encode()
    assert b"GOMAXPROCS=" + expected in environ
