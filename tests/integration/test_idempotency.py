"""One idempotency key, one provider call and one bill, through the real router processes and
JetStream: concurrent duplicates share the first call's answer, a retry after the router
restarts is replayed from the key-value bucket, and a reuse for another request is refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.stack_keys import app_key
from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    server = WireServer(delay_s=0.5)  # slow enough for the duplicates to arrive while it runs
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = Path(tmp_path_factory.mktemp("idempotency-stack"))
    running = start_provider_stack(state, [wire_model("wire-closed", "CLOSED", wire.endpoint, "3.00")])
    yield running
    running.stop()


def ask(text: str, key: str) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant="acme",
        workload="faq",
        messages=[common_pb2.Message(role="user", content=text)],
        params=common_pb2.GenerationParams(max_tokens=16),
        idempotency_key=key,
    )


async def complete_many(stack: Stack, request: router_pb2.CompleteRequest, n: int) -> list[router_pb2.CompleteResponse]:
    async with stack.aio_channel("router", app_key(stack, request.tenant)) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        return list(await asyncio.gather(*(stub.Complete(request, timeout=30) for _ in range(n))))


async def test_ten_concurrent_calls_make_one_provider_call_and_one_bill(stack: Stack, wire: WireServer) -> None:
    calls = len(wire.log)
    replies = await complete_many(stack, ask("What is six times seven?", "order-7"), 10)
    assert len(wire.log) - calls == 1
    assert all(r == replies[0] for r in replies)

    port = int(stack.addrs["router"].rsplit(":", 1)[1])
    stack.stop_service("router")
    stack.start_service("router", port=port)
    [again] = await complete_many(stack, ask("What is six times seven?", "order-7"), 1)
    assert again == replies[0] and len(wire.log) - calls == 1  # replayed after the restart

    async with stack.aio_channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        query = ledger_pb2.AttemptQuery(request_id=replies[0].request_id)
        deadline = time.monotonic() + 20
        while not (rows := (await ledger.ListAttempts(query)).attempts):
            assert time.monotonic() < deadline, "the ledger did not record the attempt"
            await asyncio.sleep(0.1)
    assert len(rows) == 1 and rows[0].cost_usd == replies[0].total_cost_usd


async def test_the_same_key_for_another_request_is_invalid(stack: Stack, wire: WireServer) -> None:
    await complete_many(stack, ask("What is 2 + 2?", "order-8"), 1)
    calls = len(wire.log)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await complete_many(stack, ask("What is 3 + 3?", "order-8"), 1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("idempotency_key: ")
    assert len(wire.log) == calls
