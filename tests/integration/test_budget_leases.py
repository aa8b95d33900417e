"""Budgets hold under a burst: two router processes reserve each request's worst case against
leases the real ledger grants them over NATS (request/reply, with the stack's NATS permissions),
so 50 concurrent requests on a 0.01 USD budget spend no more than the limit, and every answered
request is billed once. Was: 50 of 50 answered, 0.0526 USD spent."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.stack_keys import app_key
from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.core.bus import EventBus
from tierlift.core.bus_layout import LEASE_BUCKET
from tierlift.core.signed_bucket import SignedBucket
from tierlift.devstack import Stack
from tierlift.ledger._leases import LeaseBook, decode
from tierlift.router._leases import worst_case_input_tokens
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

ROUTERS = ("router", "router-2")
LIMIT = Decimal("0.01")
PROMPT = "w " * 400  # 400 words: the wire server bills 400 input tokens of a bound of ~900
MAX_TOKENS = 16
PRICE = "2.20"  # USD per 1M tokens, in and out: a worst case of ~0.002 USD a request


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    server = WireServer(delay_s=0.1)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = Path(tmp_path_factory.mktemp("leases-stack"))
    running = start_provider_stack(state, [wire_model("wire-closed", "CLOSED", wire.endpoint, PRICE)])
    try:
        running.start_service("router-2")  # a second replica: both lease from the one ledger
        yield running
    finally:
        running.stop()


def ask(tenant: str, text: str = PROMPT, max_tokens: int = MAX_TOKENS) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant=tenant, workload="burst", messages=[common_pb2.Message(role="user", content=text)],
        params=common_pb2.GenerationParams(max_tokens=max_tokens),
    )  # fmt: skip


def set_budget(stack: Stack, wire: WireServer, tenant: str, strict: bool) -> int:
    """Set the budget and wait until both routers enforce it; return how many probes reached the
    provider (each a failed attempt the ledger records, at no cost)."""
    budget = ledger_pb2.Budget(tenant=tenant, period="day", limit_usd=str(LIMIT), action="reject", strict=strict)
    with stack.channel("ledger") as channel:
        ledger_pb2_grpc.LedgerStub(channel).SetBudget(budget, timeout=10)
    # each router knows the budget once it refuses a request whose worst case is over the limit; a
    # router that has not heard of it yet (the budget's state is on its way over JetStream) passes
    # the probe on, and the provider refuses it, so it costs nothing
    too_big = ask(tenant, "w " * 14_000)  # a worst case of ~0.06 USD, within the model's context window
    sent = len(wire.log)
    try:
        for name in ROUTERS:
            with stack.channel(name, app_key(stack, tenant)) as channel:
                deadline = time.monotonic() + 20
                while True:
                    wire.script.clear()
                    wire.script.append("400")
                    try:
                        router_pb2_grpc.RouterStub(channel).Complete(too_big, timeout=10)
                    except grpc.RpcError as exc:
                        if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                            break
                        # (a key reaches the second router a moment later; the provider's 400)
                    assert time.monotonic() < deadline, f"{name} never heard of the budget"
                    time.sleep(0.2)
    finally:
        wire.script.clear()
    return len(wire.log) - sent


async def burst(stack: Stack, tenant: str, n: int = 50) -> tuple[list[router_pb2.CompleteResponse], list[str]]:
    """n requests over both routers, each after a random pause of up to a second."""
    key = app_key(stack, tenant)
    channels = [stack.aio_channel(name, key) for name in ROUTERS]
    refusals: list[str] = []

    async def one(i: int) -> router_pb2.CompleteResponse | None:
        await asyncio.sleep(random.random())
        try:
            reply: router_pb2.CompleteResponse = await router_pb2_grpc.RouterStub(channels[i % 2]).Complete(
                ask(tenant), timeout=30
            )
            return reply
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
            refusals.append(exc.details() or "")
            return None

    try:
        replies = await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        for channel in channels:
            await channel.close()
    return [r for r in replies if r is not None], refusals


def billed(stack: Stack, tenant: str, expected: Decimal, attempts: int) -> ledger_pb2.SpendReport:
    """The ledger's spend of `tenant` once it has stored `expected` over `attempts` attempts (or
    what it has after 20 s)."""
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        deadline = time.monotonic() + 20
        while True:
            report = ledger.GetSpend(ledger_pb2.SpendQuery(tenant=tenant), timeout=10)
            stored = Decimal(report.total_cost_usd or "0") >= expected and report.total_attempts >= attempts
            if stored or time.monotonic() > deadline:
                return report
            time.sleep(0.2)


def spent_in(book: LeaseBook) -> Decimal:
    """What the book counts as spent: all it committed but what leases still hold unspent."""
    return book.baseline + book.closed + sum((h.committed - h.held for h in book.holdings.values()), Decimal(0))


async def lease_book(stack: Stack, tenant: str, settled: Decimal) -> LeaseBook:
    """The budget's book as the ledger keeps it (its bucket, read with the ledger's own NATS user),
    once what it counts as spent is `settled` (a strict request gives its lease back after it
    answers), or as it is after 10 s."""
    bus = await EventBus.connect(stack.nats_url, "test-ledger-book", seed=stack.nats_seeds["ledger"], role="ledger")
    try:
        bucket = await SignedBucket.open(bus.js, LEASE_BUCKET, bus.signer)
        key = f"{tenant}._all.day.{datetime.now(UTC).date().isoformat()}"  # (a burst across midnight: rerun)
        deadline = time.monotonic() + 10
        while True:
            book = decode((await bucket.get(key)).value)
            if spent_in(book) == settled or time.monotonic() > deadline:
                return book
            await asyncio.sleep(0.1)
    finally:
        await bus.drain()


@pytest.mark.parametrize("strict", [False, True], ids=["leased", "strict"])
async def test_a_burst_over_two_routers_spends_no_more_than_the_budget(
    stack: Stack, wire: WireServer, strict: bool
) -> None:
    tenant = "burst-strict" if strict else "burst-leased"
    probes = set_budget(stack, wire, tenant, strict)
    assert worst_case_input_tokens(ask(tenant)) < 1000

    replies, refusals = await burst(stack, tenant)

    answered = sum((Decimal(r.total_cost_usd) for r in replies), Decimal(0))
    assert replies and refusals, (len(replies), refusals[:1])
    assert all("daily budget of tenant " + tenant + " has no headroom" in r for r in refusals), refusals[:3]
    print(f"{tenant}: {len(replies)} of 50 answered, {answered} USD billed of {LIMIT}")  # for the report
    assert answered <= LIMIT
    report = billed(stack, tenant, answered, len(replies) + probes)
    # billed once each: the ledger's total and attempts are the answers' own (and any probe's that
    # a router passed on before it knew the budget, refused by the provider at no cost)
    assert Decimal(report.total_cost_usd) == answered
    assert report.total_attempts == len(replies) + probes
    assert len({r.request_id for r in replies}) == len(replies)
    # the ledger's lease book never counts less than was spent, nor commits more than the limit
    book = await lease_book(stack, tenant, answered)
    assert answered <= book.committed(answered) <= LIMIT
    if not strict:  # routers give their leases back when they stop: what is left is what was spent
        ports = {name: int(stack.addrs[name].rsplit(":", 1)[1]) for name in ROUTERS}
        for name in ROUTERS:
            assert stack.stop_service(name) == 0
        for name in ROUTERS:
            stack.start_service(name, port=ports[name])
        book = await lease_book(stack, tenant, answered)
    assert book.holdings == {}  # a strict request gives back what it did not spend as it settles
    assert spent_in(book) == answered  # each answer's cost counted once, no more and no less
