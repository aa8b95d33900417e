"""Through the real adapter, router and ledger processes: a prompt the provider has cached is billed
at the catalog's cache-read price, its reasoning tokens at the reasoning price, and the ledger's
spend says so kind by kind. The provider is a local server speaking OpenAI's wire format, whose
prompt cache reads a prompt it has seen before."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.stack_keys import tenant_router
from tests.wire.server import ANSWER_TOKENS, WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

PRICES = {"input_per_million": "1.00", "output_per_million": "2.00", "cache_read_per_million": "0.10",
          "reasoning_per_million": "3.00"}  # fmt: skip
REASONING = 11


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    server = WireServer(prompt_cache=True, reasoning_tokens=REASONING)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def provider_stack(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = Path(tmp_path_factory.mktemp("kinds-stack"))
    model = wire_model("wire-cached", "CLOSED", wire.endpoint, "1.00") | {"price": {"api": PRICES}}
    stack = start_provider_stack(state, [model], TIERLIFT_UPSTREAM_MAX_RETRIES="0")
    yield stack
    stack.stop()


def _ask(stack: Stack) -> router_pb2.CompleteResponse:
    asked = router_pb2.CompleteRequest(
        tenant="kinds", workload="faq", messages=[common_pb2.Message(role="user", content="What is six times seven?")],
        params=common_pb2.GenerationParams(max_tokens=16),
    )  # fmt: skip
    with tenant_router(stack) as channel:
        reply: router_pb2.CompleteResponse = router_pb2_grpc.RouterStub(channel).Complete(asked, timeout=30)
    return reply


def _ledger_row(stack: Stack, request_id: str) -> ledger_pb2.LedgerAttempt:
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        deadline = time.monotonic() + 20
        while not (rows := ledger.ListAttempts(ledger_pb2.AttemptQuery(request_id=request_id)).attempts):
            assert time.monotonic() < deadline, "the ledger did not record the attempt"
            time.sleep(0.1)
    return rows[0]


def test_a_cached_prompt_is_billed_at_the_cache_read_price(provider_stack: Stack) -> None:
    first, again = _ask(provider_stack), _ask(provider_stack)
    prompt = first.usage.input_tokens
    assert prompt > 0 and first.usage.cache_read_input_tokens == 0
    assert (again.usage.input_tokens, again.usage.cache_read_input_tokens) == (prompt, prompt)
    assert again.usage.reasoning_output_tokens == REASONING

    million = Decimal(1_000_000)
    output = len(ANSWER_TOKENS) * Decimal("2.00") + REASONING * Decimal("3.00")
    first_cost = (prompt * Decimal("1.00") + output) / million
    again_cost = (prompt * Decimal("0.10") + output) / million  # the prompt at a tenth of its price
    for reply, cost in ((first, first_cost), (again, again_cost)):
        row = _ledger_row(provider_stack, reply.request_id)
        assert Decimal(row.cost_usd) == Decimal(reply.total_cost_usd) == cost
        assert row.usage == reply.usage
    kinds = {k.kind: k for k in _ledger_row(provider_stack, again.request_id).kinds}
    assert (kinds["cache_read"].tokens, Decimal(kinds["cache_read"].cost_usd)) == (
        prompt,
        prompt * Decimal("0.10") / million,
    )
    assert (kinds["reasoning"].tokens, Decimal(kinds["reasoning"].cost_usd)) == (
        REASONING,
        REASONING * Decimal("3") / million,
    )

    with provider_stack.channel("ledger") as channel:
        spend = ledger_pb2_grpc.LedgerStub(channel).GetSpend(ledger_pb2.SpendQuery(tenant="kinds"), timeout=10)
    totals = {k.kind: k for k in spend.kinds}
    assert Decimal(spend.total_cost_usd) == first_cost + again_cost
    assert sum(Decimal(k.cost_usd) for k in spend.kinds) == first_cost + again_cost
    assert totals["cache_read"].tokens == prompt and totals["reasoning"].tokens == 2 * REASONING
