"""Scale out on the engines the services already share: two combined request-path replicas (each
the gateway, router, classifier and adapter in one process) and two ledgers, competing consumers
of the same JetStream durables over one PostgreSQL. Under concurrent load over both replicas,
with one ledger SIGKILLed mid-load, every provider call is billed once: the attempts the ledgers
stored are the provider's calls, their total is the callers' answers' total to the last digit,
and each answered request has one row."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.postgres import postgres_server
from tests.stack_keys import app_key
from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

TENANT = "scaleout"
REPLICAS = ("router", "router-2")
REQUESTS, CONCURRENCY, KILL_AFTER = 400, 16, 80


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    server = WireServer(delay_s=0.01)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with postgres_server() as database_url:
        state = Path(tmp_path_factory.mktemp("scale-out"))
        running = start_provider_stack(
            state,
            [wire_model("wire-closed", "CLOSED", wire.endpoint, "3.00")],
            topology="combined",
            database_url=database_url,
            metrics=True,
            TIERLIFT_UPSTREAM_MAX_RETRIES="0",
        )
        try:
            running.start_service("router-2")
            running.start_service("ledger-2")
            yield running
        finally:
            running.stop()


def ask(i: int) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant=TENANT,
        workload="load",
        messages=[common_pb2.Message(role="user", content=f"Scale-out question number {i}?")],
        params=common_pb2.GenerationParams(max_tokens=16),
    )


def ledger_cost_counted(stack: Stack, ledger: str) -> float:
    """What this ledger process priced as it stored rows (its own Prometheus counter)."""
    with urllib.request.urlopen(f"http://{stack.metrics_addrs[ledger]}/metrics", timeout=10) as reply:
        families = {f.name: f.samples for f in text_string_to_metric_families(reply.read().decode())}
    return sum(s.value for s in families.get("tierlift_ledger_cost_USD", []) if s.name.endswith("_total"))


def key_known_to_both_replicas(stack: Stack) -> str:
    """A new app key of TENANT, once both replicas have it (keys reach each over the bus)."""
    key = app_key(stack, TENANT)
    for name in REPLICAS:
        with stack.channel(name, key) as channel:
            deadline = time.monotonic() + 20
            while True:
                try:
                    router_pb2_grpc.RouterStub(channel).Plan(ask(-1), timeout=10)  # calls no provider
                    break
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED, exc
                    assert time.monotonic() < deadline, f"{name} never heard of the key"
                    time.sleep(0.2)
    return key


async def load(
    stack: Stack, key: str, killed: asyncio.Event, answers: list[router_pb2.CompleteResponse]
) -> list[router_pb2.CompleteResponse]:
    """REQUESTS requests, CONCURRENCY at a time, alternating between the two replicas; the first
    ledger is SIGKILLed once KILL_AFTER have been answered."""
    channels = [stack.aio_channel(name, key) for name in REPLICAS]
    stubs = [router_pb2_grpc.RouterStub(channel) for channel in channels]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            reply: router_pb2.CompleteResponse = await stubs[i % 2].Complete(ask(i), timeout=60)
        answers.append(reply)
        if len(answers) == KILL_AFTER:
            killed.set()

    try:
        await asyncio.gather(*(one(i) for i in range(REQUESTS)))
    finally:
        for channel in channels:
            await channel.close()
    return answers


def spend(stack: Stack) -> ledger_pb2.SpendReport:
    with stack.channel("ledger-2", stack.keys["admin"]) as channel:
        return ledger_pb2_grpc.LedgerStub(channel).GetSpend(ledger_pb2.SpendQuery(tenant=TENANT), timeout=10)


def answered_requests(stack: Stack) -> list[str]:
    with stack.channel("ledger-2", stack.keys["admin"]) as channel:
        query = ledger_pb2.RequestQuery(tenant=TENANT, outcome="answered", limit=1000)
        return [r.request_id for r in ledger_pb2_grpc.LedgerStub(channel).ListRequests(query, timeout=10).requests]


async def test_two_replicas_and_two_ledgers_under_load_bill_every_call_once(stack: Stack, wire: WireServer) -> None:
    key = key_known_to_both_replicas(stack)
    calls_before = len(wire.log)
    killed = asyncio.Event()

    async def kill_first_ledger() -> tuple[float, int]:
        """SIGKILL the first ledger mid-load, once it has stored some of it (batches in flight are
        redelivered to the survivor); returns what it had counted, and how many were answered."""
        await killed.wait()
        while True:
            if counted := ledger_cost_counted(stack, "ledger"):
                break
            await asyncio.sleep(0.05)
        stack.procs["ledger"].send_signal(signal.SIGKILL)
        return counted, len(answered_so_far)

    answered_so_far: list[router_pb2.CompleteResponse] = []
    answers, (first_ledger_counted, answered_at_kill) = await asyncio.gather(
        load(stack, key, killed, answered_so_far), kill_first_ledger()
    )
    stack.procs.pop("ledger").wait()

    provider_calls = len(wire.log) - calls_before
    print(f"first ledger killed at {answered_at_kill} of {REQUESTS} answered, having counted {first_ledger_counted}")
    assert len(answers) == REQUESTS == provider_calls  # the wire provider never fails: one call each
    answered_total = sum((Decimal(a.total_cost_usd) for a in answers), Decimal(0))
    assert answered_total > 0
    # the survivor stores what the killed ledger had not acknowledged, after JetStream's ack wait
    deadline = time.monotonic() + 90
    while True:
        report = spend(stack)
        if report.total_attempts >= provider_calls or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert report.total_attempts == provider_calls  # lost nothing, billed nothing twice
    assert Decimal(report.total_cost_usd) == answered_total  # exact, to the last digit
    rows = answered_requests(stack)
    assert sorted(rows) == sorted(a.request_id for a in answers)  # one row per answered request
    # both ledgers consumed: competing consumers of the same durables, not a standby
    assert first_ledger_counted > 0 and answered_at_kill < REQUESTS  # killed mid-load
    assert ledger_cost_counted(stack, "ledger-2") > 0
