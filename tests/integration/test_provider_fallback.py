"""Through the real router and ledger processes: a provider's 5xx on the first rung falls back
to the next, and both attempts are in the response and the ledger. Providers are a local
server speaking OpenAI's wire format, reached by the adapter process through the openai SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.stack_keys import tenant_router
from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    server = WireServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def provider_stack(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = Path(tmp_path_factory.mktemp("provider-stack"))
    models = [
        wire_model("wire-open", "HOSTED_OPEN", wire.endpoint, "0.50"),
        wire_model("wire-closed", "CLOSED", wire.endpoint, "3.00"),
    ]
    stack = start_provider_stack(state, models, TIERLIFT_UPSTREAM_MAX_RETRIES="0")
    yield stack
    stack.stop()


def ask(text: str) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant="acme",
        workload="faq",
        messages=[common_pb2.Message(role="user", content=text)],
        params=common_pb2.GenerationParams(max_tokens=16),
    )


def test_5xx_on_first_rung_falls_back_and_both_attempts_are_billed(provider_stack: Stack, wire: WireServer) -> None:
    wire.script.append("500")
    with tenant_router(provider_stack) as channel:
        reply = router_pb2_grpc.RouterStub(channel).Complete(ask("What is six times seven?"), timeout=30)
    assert [(a.model, a.outcome) for a in reply.attempts] == [
        ("wire-open", router_pb2.OUTCOME_FAULT),
        ("wire-closed", router_pb2.OUTCOME_ANSWERED),
    ]
    assert "UNAVAILABLE" in reply.attempts[0].error and "HTTP 500" in reply.attempts[0].error

    with provider_stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        deadline = time.monotonic() + 20
        while len(rows := ledger.ListAttempts(ledger_pb2.AttemptQuery(request_id=reply.request_id)).attempts) < 2:
            assert time.monotonic() < deadline, "ledger did not record both attempts"
            time.sleep(0.1)
    assert [(r.model, r.outcome) for r in rows] == [("wire-open", "FAULT"), ("wire-closed", "ANSWERED")]
    assert Decimal(rows[0].cost_usd) == 0
    assert Decimal(rows[1].cost_usd) == Decimal(reply.attempts[1].cost_usd) == Decimal(reply.total_cost_usd) > 0


def test_regulated_request_is_refused_without_reaching_any_provider(provider_stack: Stack, wire: WireServer) -> None:
    calls_before = len(wire.log)
    with tenant_router(provider_stack) as channel, pytest.raises(grpc.RpcError) as err:
        router_pb2_grpc.RouterStub(channel).Complete(ask("Patient diagnosed with HIV: draft a letter"), timeout=30)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "REGULATED may not be sent to tier" in err.value.details()
    assert len(wire.log) == calls_before
