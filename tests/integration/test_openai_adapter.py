"""The OpenAI-compatible adapter through the official SDK against a local server speaking
OpenAI's wire format: text, usage, logprobs, streaming, and every fault mapped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from switchyard.adapters import BackendError
from switchyard.adapters.openai_compat import OpenAICompatBackend
from switchyard.core.catalog import Model
from switchyard.core.entry import StartupError
from switchyard.v1 import adapter_pb2, common_pb2
from tests.wire.openai_server import ANSWER_TOKENS, TOKEN_LOGPROB, OpenAIWireServer


def wire_model(endpoint: str, logprobs: bool = True, key_env: str = "WIRE_API_KEY") -> Model:
    return Model.model_validate(
        {
            "id": "wire-model",
            "tier": "HOSTED_OPEN",
            "provider": "wire",
            "adapter": "openai-wire",
            "upstream_model": "org/wire-model-8b",
            "endpoint": endpoint,
            "licence": {"name": "test"},
            "context_window": 8192,
            "capabilities": {"streaming": True, "logprobs": logprobs},
            "price": {"api": {"input_per_million": "0.10", "output_per_million": "0.20"}},
            "api_key_env": key_env,
        }
    )


@pytest.fixture
def wire() -> Iterator[OpenAIWireServer]:
    server = OpenAIWireServer()
    server.endpoint = server.start()  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def backend(wire: OpenAIWireServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenAICompatBackend]:
    monkeypatch.setenv("WIRE_API_KEY", "sk-wire-test")
    b = OpenAICompatBackend("openai-wire", [wire_model(wire.endpoint)], timeout_s=2.0, max_retries=2)  # type: ignore[attr-defined]
    try:
        yield b
    finally:
        await b.close()


def request(max_tokens: int = 16) -> adapter_pb2.GenerateRequest:
    return adapter_pb2.GenerateRequest(
        model="wire-model",
        messages=[common_pb2.Message(role="user", content="What is six times seven?")],
        params=common_pb2.GenerationParams(max_tokens=max_tokens),
    )


async def test_answer_usage_and_logprobs_come_from_the_wire(
    wire: OpenAIWireServer, backend: OpenAICompatBackend
) -> None:
    reply = await backend.generate(request())
    assert reply.text == "".join(ANSWER_TOKENS)
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (5, len(ANSWER_TOKENS))
    assert reply.confidence.has_logprobs and reply.confidence.token_count == len(ANSWER_TOKENS)
    assert reply.confidence.mean_logprob == pytest.approx(TOKEN_LOGPROB)
    [sent] = wire.log
    assert sent.body["model"] == "org/wire-model-8b" and sent.body["logprobs"] is True
    assert sent.authorization == "Bearer sk-wire-test"


async def test_stream_yields_chunks_in_order_then_usage(backend: OpenAICompatBackend) -> None:
    chunks = [c async for c in backend.stream(request())]
    assert [c.text for c in chunks[:-1]] == ANSWER_TOKENS
    final = chunks[-1]
    assert final.final and final.summary.text == "".join(ANSWER_TOKENS)
    assert final.summary.usage.output_tokens == len(ANSWER_TOKENS)
    assert final.summary.confidence.token_count == len(ANSWER_TOKENS)


async def test_no_logprobs_is_said_when_the_model_gives_none(
    wire: OpenAIWireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIRE_API_KEY", "k")
    b = OpenAICompatBackend("openai-wire", [wire_model(wire.endpoint, logprobs=False)], 2.0, 0)  # type: ignore[attr-defined]
    reply = await b.generate(request())
    await b.close()
    assert not reply.confidence.has_logprobs
    assert "logprobs" not in wire.log[0].body


async def test_transient_5xx_and_429_are_retried_by_the_sdk(
    wire: OpenAIWireServer, backend: OpenAICompatBackend
) -> None:
    wire.script.extend(["500", "429:0"])
    reply = await backend.generate(request())
    assert reply.text
    assert len(wire.log) == 3


@pytest.mark.parametrize(
    ("script", "code", "calls"),
    [
        (["500", "500", "500"], grpc.StatusCode.UNAVAILABLE, 3),
        (["429:0", "429:0", "429:0"], grpc.StatusCode.RESOURCE_EXHAUSTED, 3),
        (["400"], grpc.StatusCode.INVALID_ARGUMENT, 1),
        (["drop", "drop", "drop"], grpc.StatusCode.UNAVAILABLE, 3),
        (["slow:3", "slow:3", "slow:3"], grpc.StatusCode.DEADLINE_EXCEEDED, 3),
    ],
    ids=["5xx", "429", "400", "dropped-connection", "slow"],
)
async def test_faults_map_to_grpc_status_after_bounded_retries(
    wire: OpenAIWireServer, backend: OpenAICompatBackend, script: list[str], code: grpc.StatusCode, calls: int
) -> None:
    wire.script.extend(script)
    with pytest.raises(BackendError) as err:
        await backend.generate(request())
    assert err.value.code == code
    assert len(wire.log) == calls  # 1 try + at most 2 retries


def test_missing_api_key_stops_the_adapter_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WIRE_API_KEY", raising=False)
    with pytest.raises(StartupError, match="WIRE_API_KEY: not set"):
        OpenAICompatBackend("openai-wire", [wire_model("http://127.0.0.1:9/v1")], 1.0, 0)
