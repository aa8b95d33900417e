"""Every provider call is recorded before it is made, through the real router, adapter and
ledger processes and JetStream: a router SIGKILLed with calls in flight and restarted leaves as
many attempts in the ledger (finished, or billed at their worst case `unsettled`) as the provider
received calls; and a NATS stall bills each request as its caller saw it."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.stack_keys import app_key
from tests.topology import own_process
from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

TENANT = "writeahead"
ANSWERED, IN_FLIGHT, AFTER = 20, 16, 4


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    server = WireServer(delay_s=0.05)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = Path(tmp_path_factory.mktemp("write-ahead"))
    running = start_provider_stack(
        state,
        [wire_model("wire-closed", "CLOSED", wire.endpoint, "3.00")],
        TIERLIFT_UPSTREAM_MAX_RETRIES="0",
        TIERLIFT_ATTEMPT_TIMEOUT_S="3",
        TIERLIFT_UNSETTLED_AFTER_S="1",
        TIERLIFT_SETTLE_EVERY_S="0.5",
    )
    yield running
    running.stop()


def ask(i: int, tenant: str = TENANT) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant=tenant,
        workload="load",
        messages=[common_pb2.Message(role="user", content=f"Question number {i}?")],
        params=common_pb2.GenerationParams(max_tokens=16),
    )


async def complete(
    stack: Stack, first: int, n: int, tenant: str = TENANT
) -> list[router_pb2.CompleteResponse | BaseException]:
    async with stack.aio_channel("router", app_key(stack, tenant)) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        calls = (stub.Complete(ask(i, tenant), timeout=60) for i in range(first, first + n))
        return list(await asyncio.gather(*calls, return_exceptions=True))


def spend(stack: Stack, tenant: str = TENANT) -> ledger_pb2.SpendReport:
    with stack.channel("ledger") as channel:
        return ledger_pb2_grpc.LedgerStub(channel).GetSpend(ledger_pb2.SpendQuery(tenant=tenant), timeout=10)


async def test_a_router_killed_mid_call_leaves_an_attempt_for_every_provider_call(
    stack: Stack, wire: WireServer
) -> None:
    base = len(wire.log)
    answered = await complete(stack, 0, ANSWERED)
    assert all(isinstance(r, router_pb2.CompleteResponse) for r in answered)

    wire.delay_s = 30.0  # the next calls hang at the provider until the router is gone
    in_flight = asyncio.create_task(complete(stack, ANSWERED, IN_FLIGHT))
    deadline = time.monotonic() + 30
    while len(wire.log) - base < ANSWERED + IN_FLIGHT:
        assert time.monotonic() < deadline, f"only {len(wire.log) - base - ANSWERED} calls reached the provider"
        await asyncio.sleep(0.05)
    stack.procs["router"].send_signal(signal.SIGKILL)  # no drain: the calls in flight are never finished
    stack.procs["router"].wait()
    lost = await in_flight
    assert all(isinstance(r, grpc.aio.AioRpcError) for r in lost)

    wire.delay_s = 0.05
    port = int(stack.addrs["router"].rsplit(":", 1)[1])
    stack.start_service("router", port=port)
    after = await complete(stack, ANSWERED + IN_FLIGHT, AFTER)
    assert all(isinstance(r, router_pb2.CompleteResponse) for r in after)
    calls = len(wire.log) - base
    assert calls == ANSWERED + IN_FLIGHT + AFTER

    deadline = time.monotonic() + 60
    while (report := spend(stack)).total_attempts < calls:
        assert time.monotonic() < deadline, f"{report.total_attempts} attempts recorded for {calls} provider calls"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # settled once: nothing more comes
    report = spend(stack)
    assert report.total_attempts == calls
    unsettled = sum(line.unsettled_attempts for line in report.lines)
    assert unsettled == IN_FLIGHT  # the calls killed mid-flight, billed at their worst case


async def test_an_adapter_killed_mid_call_leaves_an_attempt_for_every_provider_call(
    stack: Stack, wire: WireServer
) -> None:
    """The adapter took the calls and reached the provider, then died: the router cannot know
    what the provider billed, so each is billed at its worst case, unsettled, never at 0; a caller
    who got the error is not billed as answered."""
    own_process(stack, "adapter-openai-wire")
    tenant, base = "adapterkill", len(wire.log)
    app_key(stack, tenant)
    wire.delay_s = 30.0
    in_flight = asyncio.create_task(complete(stack, 2000, IN_FLIGHT, tenant))
    deadline = time.monotonic() + 30
    while len(wire.log) - base < IN_FLIGHT:
        assert time.monotonic() < deadline, f"only {len(wire.log) - base} calls reached the provider"
        await asyncio.sleep(0.02)
    adapter = stack.procs["adapter-openai-wire"]
    adapter.send_signal(signal.SIGKILL)  # within the router's 3 s attempt timeout: the calls are in flight
    adapter.wait()
    lost = await in_flight
    assert all(isinstance(r, grpc.aio.AioRpcError) for r in lost)  # one rung: the callers get the error

    wire.delay_s = 0.05
    port = int(stack.addrs["adapter-openai-wire"].rsplit(":", 1)[1])
    stack.start_service("adapter-openai-wire", port=port)
    answers: list[router_pb2.CompleteResponse] = []
    deadline = time.monotonic() + 60
    while len(answers) < AFTER:  # the router's circuit for the adapter reopens after its cooldown
        assert time.monotonic() < deadline, f"{len(answers)} answers after the adapter came back"
        [reply] = await complete(stack, 2100 + len(answers), 1, tenant)
        if isinstance(reply, router_pb2.CompleteResponse):
            answers.append(reply)
        else:
            await asyncio.sleep(0.5)
    calls = len(wire.log) - base
    assert calls == IN_FLIGHT + AFTER

    deadline = time.monotonic() + 60
    while (billed := billed_calls(stack, tenant)) < calls:
        assert time.monotonic() < deadline, f"{billed} calls billed of {calls}"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # settled once: nothing more comes
    assert billed_calls(stack, tenant) == calls
    unsettled = sum(line.unsettled_attempts for line in spend(stack, tenant).lines)
    assert unsettled == IN_FLIGHT  # the killed calls, at their worst case
    assert answered_requests(stack, tenant) == {a.request_id for a in answers}


async def test_a_router_stopped_gracefully_bills_the_calls_its_callers_left_exactly(
    stack: Stack, wire: WireServer
) -> None:
    """Callers that cancel leave their provider calls running in the router's background; a
    rolling restart (SIGTERM) lets them finish before it closes its adapter channels and the bus,
    so each is billed as the provider answered it (before, the closing channel cut them, and they
    were closed at no cost though the provider had them)."""
    tenant, base = "graceful", len(wire.log)
    wire.delay_s = 2.0  # the provider answers after the callers left and the router was told to stop
    async with stack.aio_channel("router", app_key(stack, tenant)) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        calls = [stub.Complete(ask(i, tenant), timeout=60) for i in range(3000, 3000 + IN_FLIGHT)]
        deadline = time.monotonic() + 30
        while len(wire.log) - base < IN_FLIGHT:
            assert time.monotonic() < deadline, f"only {len(wire.log) - base} calls reached the provider"
            await asyncio.sleep(0.02)
        for call in calls:
            call.cancel()
        left = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in left)
    port = int(stack.addrs["router"].rsplit(":", 1)[1])
    assert stack.stop_service("router") == 0
    wire.delay_s = 0.05
    stack.start_service("router", port=port)

    deadline = time.monotonic() + 60
    while (billed := billed_calls(stack, tenant)) < IN_FLIGHT:
        assert time.monotonic() < deadline, f"{billed} calls billed of {IN_FLIGHT}"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # a call billed unsettled would come after its deadline: nothing more comes
    report = spend(stack, tenant)
    assert report.total_attempts == IN_FLIGHT
    assert sum(line.unsettled_attempts for line in report.lines) == 0  # each as the provider billed it


KEYED_TEXT = "A question asked with an idempotency key?"


async def complete_keyed(stack: Stack, tenant: str) -> router_pb2.CompleteResponse | BaseException:
    request = ask(0, tenant)
    request.messages[0].content, request.idempotency_key = KEYED_TEXT, "stall-key"
    async with stack.aio_channel("router", app_key(stack, tenant)) as channel:
        try:
            reply: router_pb2.CompleteResponse = await router_pb2_grpc.RouterStub(channel).Complete(request, timeout=60)
        except grpc.aio.AioRpcError as exc:
            return exc
        return reply


def billed_calls(stack: Stack, tenant: str) -> int:
    """The tenant's attempt rows that stand for a provider call (a rung closed without a call is a
    fault at no cost; this provider never fails)."""
    with sqlite3.connect(stack.state_dir / "ledger.db") as db:
        [(count,)] = db.execute(
            "SELECT count(*) FROM attempts WHERE tenant = ? AND NOT (outcome = 'FAULT' AND cost_usd = 0)", (tenant,)
        ).fetchall()
    return int(count)


def answered_requests(stack: Stack, tenant: str) -> set[str]:
    with stack.channel("ledger") as channel:
        query = ledger_pb2.RequestQuery(tenant=tenant, outcome="answered", limit=500)
        return {r.request_id for r in ledger_pb2_grpc.LedgerStub(channel).ListRequests(query, timeout=10).requests}


async def test_a_nats_stall_bills_each_request_as_its_caller_saw_it(stack: Stack, wire: WireServer) -> None:
    tenant, base = "stall", len(wire.log)
    wire.delay_s = 0.3
    app_key(stack, tenant)
    waves = [asyncio.create_task(complete(stack, 1000 + 8 * w, 8, tenant)) for w in range(1)]
    nats = stack.procs["nats"]
    for w in range(1, 8):
        if w == 2:
            keyed = asyncio.create_task(complete_keyed(stack, tenant))  # its call in flight as the bus stalls
            await asyncio.sleep(0.1)
            nats.send_signal(signal.SIGSTOP)  # a stall: connections stay open, nothing is answered
        await asyncio.sleep(0.5)
        waves.append(asyncio.create_task(complete(stack, 1000 + 8 * w, 8, tenant)))
    await asyncio.sleep(30)  # a 30 s stall, longer than a publish's tries (3 x 5 s): the router gives up on some
    nats.send_signal(signal.SIGCONT)
    results = [r for wave in waves for r in await wave]
    answers = [r for r in results if isinstance(r, router_pb2.CompleteResponse)]
    assert all(isinstance(r, router_pb2.CompleteResponse | grpc.aio.AioRpcError) for r in results)
    assert answers and len(answers) < len(results)  # the stall really failed some callers

    first = await keyed
    retried = await complete_keyed(stack, tenant)  # the same key after whatever the first one got
    assert isinstance(retried, router_pb2.CompleteResponse)
    if isinstance(first, router_pb2.CompleteResponse):
        assert retried == first  # replayed
        answers.append(first)
    else:
        answers.append(retried)
    asked = [r for r in wire.log[base:] if KEYED_TEXT in json.dumps(r.body)]
    assert len(asked) == 1  # one provider call for the key, whatever the stall did to the first caller

    calls = len(wire.log) - base
    deadline = time.monotonic() + 60
    while (billed := billed_calls(stack, tenant)) < calls or answered_requests(stack, tenant) != {
        a.request_id for a in answers
    }:
        assert time.monotonic() < deadline, f"{billed} calls billed of {calls}; answered: {len(answers)}"
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)
    assert billed_calls(stack, tenant) == calls  # every provider call billed, once
    assert answered_requests(stack, tenant) == {a.request_id for a in answers}  # as the callers saw them
