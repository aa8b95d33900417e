"""Chaos through the real router, adapter and ledger processes: one provider (OpenAI's wire
format) fails half its calls at random, the other (Bedrock's Converse, through boto3) answers
slowly. Every request ends with an answer or a clear error, none outlives its deadline, and the
ledger holds exactly the attempts the responses reported."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.stack_keys import app_key
from tests.wire.server import WireServer
from tests.wire.stack import aws_env, start_provider_stack, wire_model
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

REQUESTS = 1000
CONCURRENCY = 16
DEADLINE_S = 10.0
CLEAR_ERRORS = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, WireServer, WireServer]]:
    flaky, slow = WireServer(fail_rate=0.5, seed=11), WireServer(protocol="bedrock", delay_s=0.05)
    flaky.start()
    slow.start()
    bedrock = {"cloud_region": "eu-central-1", "regions": ["eu"], "api_key_env": ""}
    models = [
        wire_model("flaky-open", "HOSTED_OPEN", flaky.endpoint, "0.50"),
        wire_model("slow-closed", "CLOSED", slow.endpoint, "3.00", adapter="bedrock-wire", **bedrock),
    ]
    state = Path(tmp_path_factory.mktemp("chaos"))
    stack = start_provider_stack(
        state,
        models,
        adapters={"openai-wire": "openai", "bedrock-wire": "bedrock"},
        **aws_env(state),
        TIERLIFT_UPSTREAM_MAX_RETRIES="0",
        TIERLIFT_ATTEMPT_TIMEOUT_S="2",
        TIERLIFT_CIRCUIT_COOLDOWN_S="0.2",
    )
    try:
        yield stack, flaky, slow
    finally:
        stack.stop()
        flaky.stop()
        slow.stop()


async def _run_all(stack: Stack) -> tuple[list[router_pb2.CompleteResponse], list[grpc.aio.AioRpcError], float]:
    answers: list[router_pb2.CompleteResponse] = []
    errors: list[grpc.aio.AioRpcError] = []
    slowest = 0.0
    queue = iter(range(REQUESTS))
    async with stack.aio_channel("router", app_key(stack, "chaos")) as channel:
        router = router_pb2_grpc.RouterStub(channel)

        async def worker() -> None:
            nonlocal slowest
            for i in queue:
                request = router_pb2.CompleteRequest(
                    tenant="chaos",
                    workload="load",
                    messages=[common_pb2.Message(role="user", content=f"Question number {i}?")],
                    params=common_pb2.GenerationParams(max_tokens=8),
                )
                started = time.monotonic()
                try:
                    answers.append(await router.Complete(request, timeout=DEADLINE_S))
                except grpc.aio.AioRpcError as exc:
                    errors.append(exc)
                slowest = max(slowest, time.monotonic() - started)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return answers, errors, slowest


def test_chaos_every_request_ends_clearly_and_the_ledger_matches(
    chaos_stack: tuple[Stack, WireServer, WireServer],
) -> None:
    stack, flaky, slow = chaos_stack
    answers, errors, slowest = asyncio.run(_run_all(stack))

    assert len(answers) + len(errors) == REQUESTS
    assert slowest < DEADLINE_S + 1.0, "a request hung past its deadline"
    for exc in errors:
        assert exc.code() in CLEAR_ERRORS and "every rung failed" in (exc.details() or ""), exc
    faults = sum(a.outcome == router_pb2.OUTCOME_FAULT for r in answers for a in r.attempts)
    assert faults > 0 and len(flaky.log) > 0  # the chaos really happened
    answered_by = {a.model for r in answers for a in r.attempts if a.outcome == router_pb2.OUTCOME_ANSWERED}
    assert "slow-closed" in answered_by and {r.region for r in slow.log} == {"eu-central-1"}  # Bedrock took its share

    # Attempts of failed requests are listed in their error message.
    reported = sum(len(r.attempts) for r in answers) + sum(
        len(re.findall(r"attempt \d+ ", e.details() or "")) for e in errors
    )
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        deadline = time.monotonic() + 60
        while (stored := ledger.GetSpend(ledger_pb2.SpendQuery(tenant="chaos")).total_attempts) < reported:
            assert time.monotonic() < deadline, f"ledger has {stored} of {reported} attempts after 60s"
            time.sleep(0.2)
        time.sleep(1.0)  # nothing more may arrive: no double counting
        assert ledger.GetSpend(ledger_pb2.SpendQuery(tenant="chaos")).total_attempts == reported
