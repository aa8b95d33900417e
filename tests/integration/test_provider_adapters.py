"""Provider adapters through the official SDKs (openai, its Azure client, anthropic) against local
servers that speak each provider's wire format (Azure: deployment paths, api-version, api-key):
text, usage, logprobs, streaming, and every fault mapped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from tests.wire.server import ANSWER_TOKENS, TOKEN_LOGPROB, WireServer
from tierlift.adapters import BackendError
from tierlift.adapters.anthropic_messages import AnthropicBackend
from tierlift.adapters.openai_compat import AzureOpenAIBackend, OpenAICompatBackend
from tierlift.core.catalog import Model
from tierlift.core.entry import StartupError
from tierlift.v1 import adapter_pb2, common_pb2

BACKENDS: dict[str, Any] = {"openai": OpenAICompatBackend, "anthropic": AnthropicBackend, "azure": AzureOpenAIBackend}


def wire_model(endpoint: str, logprobs: bool = True, key_env: str = "WIRE_API_KEY") -> Model:
    return Model.model_validate(
        {
            "id": "wire-model",
            "tier": "HOSTED_OPEN",
            "provider": "wire",
            "adapter": "wire",
            "upstream_model": "org/wire-model-8b",
            "endpoint": endpoint,
            "licence": {"name": "test"},
            "context_window": 8192,
            "capabilities": {"streaming": True, "logprobs": logprobs},
            "price": {"api": {"input_per_million": "0.10", "output_per_million": "0.20"}},
            "api_key_env": key_env,
        }
    )


@pytest.fixture(params=["openai", "anthropic", "azure"])
def wire(request: pytest.FixtureRequest) -> Iterator[WireServer]:
    server = WireServer(protocol=request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def backend(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setenv("WIRE_API_KEY", "sk-wire-test")
    # short timeout so the "slow" fault is quick to provoke
    b = BACKENDS[wire.protocol]("wire", [wire_model(wire.endpoint)], timeout_s=1.0, max_retries=2)
    try:
        yield b
    finally:
        await b.close()


def request(max_tokens: int = 16) -> adapter_pb2.GenerateRequest:
    return adapter_pb2.GenerateRequest(
        model="wire-model",
        messages=[
            common_pb2.Message(role="system", content="Be brief."),
            common_pb2.Message(role="user", content="What is six times seven?"),
        ],
        params=common_pb2.GenerationParams(max_tokens=max_tokens),
    )


async def test_answer_and_usage_come_from_the_wire(wire: WireServer, backend: Any) -> None:
    reply = await backend.generate(request())
    assert reply.text == "".join(ANSWER_TOKENS)
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (7, len(ANSWER_TOKENS))
    [sent] = wire.log
    assert sent.body["model"] == "org/wire-model-8b"
    assert sent.body["max_tokens"] == 16


async def test_logprobs_where_the_provider_gives_them(wire: WireServer, backend: Any) -> None:
    reply = await backend.generate(request())
    if wire.protocol in ("openai", "azure"):
        assert wire.log[0].body["logprobs"] is True
        assert reply.confidence.has_logprobs and reply.confidence.token_count == len(ANSWER_TOKENS)
        assert reply.confidence.mean_logprob == pytest.approx(TOKEN_LOGPROB)
    else:  # Anthropic has none, and the signals say so
        assert not reply.confidence.has_logprobs
        assert wire.log[0].body["system"] == "Be brief."


async def test_stream_yields_chunks_in_order_then_usage(backend: Any) -> None:
    chunks = [c async for c in backend.stream(request())]
    assert [c.text for c in chunks[:-1]] == ANSWER_TOKENS
    final = chunks[-1]
    assert final.final and final.summary.text == "".join(ANSWER_TOKENS)
    assert (final.summary.usage.input_tokens, final.summary.usage.output_tokens) == (7, len(ANSWER_TOKENS))


async def test_transient_5xx_and_429_are_retried_by_the_sdk(wire: WireServer, backend: Any) -> None:
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
        (["slow:1.5", "slow:1.5", "slow:1.5"], grpc.StatusCode.DEADLINE_EXCEEDED, 3),
    ],
    ids=["5xx", "429", "400", "dropped-connection", "slow"],
)
async def test_faults_map_to_grpc_status_after_bounded_retries(
    wire: WireServer, backend: Any, script: list[str], code: grpc.StatusCode, calls: int
) -> None:
    wire.script.extend(script)
    with pytest.raises(BackendError) as err:
        await backend.generate(request())
    assert err.value.code == code
    assert len(wire.log) == calls  # 1 try + at most 2 retries


async def test_openai_model_without_logprobs_is_not_asked_for_them(monkeypatch: pytest.MonkeyPatch) -> None:
    server = WireServer(protocol="openai")
    server.start()
    monkeypatch.setenv("WIRE_API_KEY", "k")
    b = OpenAICompatBackend("wire", [wire_model(server.endpoint, logprobs=False)], 2.0, 0)
    try:
        reply = await b.generate(request())
    finally:
        await b.close()
        server.stop()
    assert not reply.confidence.has_logprobs
    assert "logprobs" not in server.log[0].body


@pytest.mark.parametrize("backend_cls", [OpenAICompatBackend, AnthropicBackend])
def test_missing_api_key_stops_the_adapter_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, backend_cls: Any
) -> None:
    monkeypatch.delenv("WIRE_API_KEY", raising=False)
    with pytest.raises(StartupError, match="WIRE_API_KEY: not set"):
        backend_cls("wire", [wire_model("http://127.0.0.1:9/v1")], 1.0, 0)


async def test_a_providers_error_reaches_the_caller_sanitised_and_the_log_whole(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire.key = "sk-the-right-one"  # the provider refuses the key and echoes it back, as some do
    monkeypatch.setenv("WIRE_API_KEY", "sk-live-0123456789abcdefghijklmnop")
    b = BACKENDS[wire.protocol]("wire", [wire_model(wire.endpoint)], timeout_s=1.0, max_retries=0)
    try:
        with pytest.raises(BackendError) as err:
            await b.generate(request())
    finally:
        await b.close()
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "HTTP 401" in err.value.message and "[redacted]" in err.value.message
    assert "0123456789abcdef" not in err.value.message and len(err.value.message) <= 240
    assert "0123456789abcdef" in err.value.detail  # the full answer stays in the adapter's log


async def test_seed_and_json_mode_reach_openai_and_are_refused_by_anthropic(wire: WireServer, backend: Any) -> None:
    asked = request()
    asked.params.seed = 7
    asked.params.response_format = "json_object"
    if wire.protocol == "anthropic":
        with pytest.raises(BackendError) as err:
            await backend.generate(asked)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and err.value.message.startswith("params.seed")
        assert wire.log == []  # refused before any call
        return
    await backend.generate(asked)
    [sent] = wire.log
    assert sent.body["seed"] == 7 and sent.body["response_format"] == {"type": "json_object"}
