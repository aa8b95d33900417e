"""Bedrock and Gemini through the real router, adapter and ledger processes: a request's region
picks the Bedrock endpoint (the SigV4 scope of every call proves where it went), a Bedrock 5xx
falls back to Gemini with both attempts billed, and Bedrock's binary event stream reaches the
caller as a stream. Providers are wire servers reached through boto3 and google-genai."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.stack_keys import tenant_router
from tests.wire.server import ANSWER_TOKENS, WireServer
from tests.wire.stack import aws_env, start_provider_stack, wire_model
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[WireServer, WireServer]]:
    bedrock, gemini = WireServer(protocol="bedrock"), WireServer(protocol="gemini")
    bedrock.start()
    gemini.start()
    yield bedrock, gemini
    bedrock.stop()
    gemini.stop()


@pytest.fixture(scope="module")
def cloud_stack(servers: tuple[WireServer, WireServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    bedrock, gemini = servers
    state = Path(tmp_path_factory.mktemp("cloud-stack"))
    aws = {"adapter": "bedrock-wire", "api_key_env": ""}
    models = [
        # one Bedrock endpoint stands in for both regions; the signature's scope says which was meant
        wire_model("sonnet-eu", "CLOSED", bedrock.endpoint, "3.30", cloud_region="eu-central-1", regions=["eu"], **aws),
        wire_model("sonnet-us", "CLOSED", bedrock.endpoint, "3.30", cloud_region="us-east-1", regions=["us"], **aws),
        wire_model("gemini-pro", "FRONTIER", gemini.endpoint, "10.00", adapter="gemini-wire", regions=["eu", "us"]),
    ]
    stack = start_provider_stack(
        state,
        models,
        adapters={"bedrock-wire": "bedrock", "gemini-wire": "gemini"},
        **aws_env(state),
        TIERLIFT_UPSTREAM_MAX_RETRIES="0",
    )
    yield stack
    stack.stop()


def ask(text: str, region: str) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant="acme",
        workload="faq",
        messages=[common_pb2.Message(role="user", content=text)],
        params=common_pb2.GenerationParams(max_tokens=16),
        constraints=router_pb2.Constraints(region=region),
    )


def test_the_requests_region_picks_the_bedrock_endpoint(
    cloud_stack: Stack, servers: tuple[WireServer, WireServer]
) -> None:
    bedrock, _ = servers
    with tenant_router(cloud_stack) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        for region, model, aws_region in (("eu", "sonnet-eu", "eu-central-1"), ("us", "sonnet-us", "us-east-1")):
            before = len(bedrock.log)
            reply = router.Complete(ask("What is six times seven?", region), timeout=30)
            assert reply.attempts[0].model == model and reply.text == "".join(ANSWER_TOKENS)
            assert {r.region for r in bedrock.log[before:]} == {aws_region}


def test_a_bedrock_5xx_falls_back_to_gemini_and_both_attempts_are_billed(
    cloud_stack: Stack, servers: tuple[WireServer, WireServer]
) -> None:
    bedrock, gemini = servers
    bedrock.script.append("500")
    with tenant_router(cloud_stack) as channel:
        reply = router_pb2_grpc.RouterStub(channel).Complete(ask("What is six times seven?", "eu"), timeout=30)
    assert [(a.model, a.outcome) for a in reply.attempts] == [
        ("sonnet-eu", router_pb2.OUTCOME_FAULT),
        ("gemini-pro", router_pb2.OUTCOME_ANSWERED),
    ]
    assert "HTTP 500" in reply.attempts[0].error and "InternalServerException" in reply.attempts[0].error
    assert gemini.sent(len(gemini.log) - 1)["model"] == "gemini-pro"

    with cloud_stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        deadline = time.monotonic() + 20
        while len(rows := ledger.ListAttempts(ledger_pb2.AttemptQuery(request_id=reply.request_id)).attempts) < 2:
            assert time.monotonic() < deadline, "ledger did not record both attempts"
            time.sleep(0.1)
    assert [(r.model, r.outcome) for r in rows] == [("sonnet-eu", "FAULT"), ("gemini-pro", "ANSWERED")]
    assert Decimal(rows[0].cost_usd) == 0 and Decimal(rows[1].cost_usd) == Decimal(reply.total_cost_usd) > 0
    # usage from Gemini's usageMetadata (the wire server counts words), priced at $10 per million both ways
    usage = reply.attempts[1].usage
    assert (usage.input_tokens, usage.output_tokens) == (5, len(ANSWER_TOKENS))
    assert Decimal(reply.total_cost_usd) == Decimal("10.00") * (5 + len(ANSWER_TOKENS)) / 1_000_000


def test_bedrocks_event_stream_reaches_the_caller_as_a_stream(cloud_stack: Stack) -> None:
    with tenant_router(cloud_stack) as channel:
        chunks = list(router_pb2_grpc.RouterStub(channel).CompleteStream(ask("Count to five.", "eu"), timeout=30))
    texts = [c.text for c in chunks if c.text]
    assert "".join(texts) == "".join(ANSWER_TOKENS) and len(texts) > 1
    final = chunks[-1].final
    assert final.attempts[-1].model == "sonnet-eu" and final.attempts[-1].usage.output_tokens == len(ANSWER_TOKENS)
