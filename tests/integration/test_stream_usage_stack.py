"""Through the real adapter, router and ledger processes: a stream the caller cuts after its text is
billed at once from counted tokens (the ledger's row says `estimated`), and the provider's usage,
which the wire server sends late (after the text, past the cut), replaces the estimate: the row,
the spend and the day's rollup then hold the provider's count, once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.stack_keys import tenant_router
from tests.wire.server import ANSWER_TOKENS, WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.core.tokens import estimate_tokens
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

PROMPT = "Please tell me, in one short sentence, what six times seven is."
USAGE_DELAY_S = 3.0  # the provider's usage comes this long after the text


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    server = WireServer(usage_delay_s=USAGE_DELAY_S)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def provider_stack(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = Path(tmp_path_factory.mktemp("stream-usage-stack"))
    model = wire_model("wire-streamed", "CLOSED", wire.endpoint, "1.00")
    stack = start_provider_stack(state, [model], TIERLIFT_UPSTREAM_MAX_RETRIES="0", TIERLIFT_LATE_USAGE_S="20")
    yield stack
    stack.stop()


def _stream_then_cut(stack: Stack) -> tuple[str, str]:
    """Read the answer's text chunks, then leave before the stream's end; (request id, text)."""
    asked = router_pb2.CompleteRequest(
        tenant="streams", workload="faq", messages=[common_pb2.Message(role="user", content=PROMPT)],
        params=common_pb2.GenerationParams(max_tokens=16),
    )  # fmt: skip
    with tenant_router(stack) as channel:
        call = router_pb2_grpc.RouterStub(channel).CompleteStream(asked, timeout=60)
        chunks = []
        for chunk in call:
            chunks.append(chunk)
            if len(chunks) == len(ANSWER_TOKENS):
                break
        call.cancel()  # the usage is still on its way
    return chunks[0].request_id, "".join(c.text for c in chunks)


def _row_when(stack: Stack, request_id: str, estimated: bool, within_s: float = 30) -> ledger_pb2.LedgerAttempt:
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        deadline = time.monotonic() + within_s
        while True:
            rows = ledger.ListAttempts(ledger_pb2.AttemptQuery(request_id=request_id), timeout=10).attempts
            if rows and rows[0].estimated == estimated:
                assert len(rows) == 1
                return rows[0]
            assert time.monotonic() < deadline, f"no {'estimated' if estimated else 'reported'} row: {rows}"
            time.sleep(0.05)


def test_a_stream_cut_after_its_text_is_billed_estimated_then_as_the_provider_reports(
    provider_stack: Stack,
) -> None:
    request_id, text = _stream_then_cut(provider_stack)
    assert text == "".join(ANSWER_TOKENS)
    million = Decimal(1_000_000)

    estimated = _row_when(provider_stack, request_id, estimated=True)
    counted = (estimate_tokens(PROMPT), estimate_tokens(text))
    assert (estimated.input_tokens, estimated.output_tokens) == counted
    assert Decimal(estimated.cost_usd) == sum(counted) * Decimal("1.00") / million
    assert estimated.outcome == "FAULT"

    reported = _row_when(provider_stack, request_id, estimated=False)
    provider = (len(PROMPT.split()), len(ANSWER_TOKENS))  # the wire server's count: words, tokens
    assert provider != counted
    assert (reported.input_tokens, reported.output_tokens) == provider
    assert Decimal(reported.cost_usd) == sum(provider) * Decimal("1.00") / million
    assert reported.event_id == estimated.event_id

    with provider_stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        spend = ledger.GetSpend(ledger_pb2.SpendQuery(tenant="streams"), timeout=10)
        report = ledger.GetReport(ledger_pb2.SpendQuery(tenant="streams"), timeout=10)
    assert Decimal(spend.total_cost_usd) == Decimal(reported.cost_usd) and spend.total_attempts == 1
    assert [line.estimated_attempts for line in spend.lines] == [0]
    assert Decimal(report.total_cost_usd) == Decimal(reported.cost_usd)  # the day's rollup moved too
