"""The OpenAI-compatible backends speak the protocol without the official SDK (`_openai_http.py`,
for CPU). The SDK stays the reference: each request here goes to the wire server once through
the `openai` SDK and once through the backend, and the two must reach the provider alike (path,
query, credential, JSON body) and read the answer alike (text, finish reason, usage, logprobs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import openai
import pytest
from aiohttp import web

from tests.integration.test_provider_adapters import make_backend, request, wire_model
from tests.wire.server import WireServer
from tierlift.adapters import BackendError
from tierlift.adapters import _openai_http as openai_http
from tierlift.adapters.openai_compat import AZURE_API_VERSION
from tierlift.v1 import adapter_pb2

KEY = "sk-wire-equivalence"


@pytest.fixture(params=["openai", "azure"])
def wire(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[WireServer]:
    monkeypatch.setenv("WIRE_API_KEY", KEY)
    server = WireServer(protocol=request.param, key=KEY)  # a wrong or missing credential gets 401
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _sdk(server: WireServer) -> openai.AsyncOpenAI:
    if server.protocol == "azure":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=server.endpoint, api_key=KEY, api_version=AZURE_API_VERSION, max_retries=0
        )
    return openai.AsyncOpenAI(base_url=server.endpoint, api_key=KEY, max_retries=0)


def _asked(case: str) -> adapter_pb2.GenerateRequest:
    asked = request(max_tokens=24)
    if case == "every-parameter":
        asked.params.temperature = 0.3
        asked.params.top_p = 0.9
        asked.params.stop.extend(["\n\n", "END"])
        asked.params.seed = 11
        asked.params.response_format = "json_object"
    if case == "json-schema":  # structured outputs: the schema object reaches the provider as given
        asked.params.response_format = "json_schema"
        asked.params.json_schema = json.dumps(
            {"name": "City", "strict": True, "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}
        )
    return asked


@pytest.mark.parametrize("case", ["plain", "every-parameter", "json-schema"])
async def test_a_completion_reaches_the_provider_as_the_sdk_sends_it_and_is_read_alike(
    wire: WireServer, case: str
) -> None:
    model = wire_model(wire.endpoint, protocol=wire.protocol)
    backend = make_backend(wire.protocol, model, timeout_s=2.0, max_retries=0)
    sdk = _sdk(wire)
    asked = _asked(case)
    try:
        ours = await backend.generate(asked)
        reference = await sdk.chat.completions.create(**backend._body(asked))
    finally:
        await backend.close()
        await sdk.close()
    ours_sent, sdk_sent = wire.log
    assert (ours_sent.path, ours_sent.body, ours_sent.authorization) == (
        sdk_sent.path,
        sdk_sent.body,
        sdk_sent.authorization,
    )
    assert ours_sent.body["model"] == "org/wire-model-8b" and ours_sent.body["max_tokens"] == 24
    if case == "json-schema":
        assert ours_sent.body["response_format"] == {
            "type": "json_schema",
            "json_schema": json.loads(asked.params.json_schema),
        }
    choice = reference.choices[0]
    assert ours.text == choice.message.content and ours.finish_reason == choice.finish_reason
    assert reference.usage is not None
    assert (ours.usage.input_tokens, ours.usage.output_tokens) == (
        reference.usage.prompt_tokens,
        reference.usage.completion_tokens,
    )
    assert choice.logprobs is not None and choice.logprobs.content
    assert ours.confidence.token_count == len(choice.logprobs.content)
    assert ours.confidence.mean_logprob == pytest.approx(
        sum(t.logprob for t in choice.logprobs.content) / len(choice.logprobs.content)
    )


async def test_a_stream_reaches_the_provider_as_the_sdk_sends_it_and_is_read_alike(wire: WireServer) -> None:
    model = wire_model(wire.endpoint, protocol=wire.protocol)
    backend = make_backend(wire.protocol, model, timeout_s=2.0, max_retries=0)
    sdk = _sdk(wire)
    try:
        chunks = [c async for c in backend.stream(request())]
        body: dict[str, Any] = {**backend._body(request()), "stream": True, "stream_options": {"include_usage": True}}
        texts, usage = [], None
        async for chunk in await sdk.chat.completions.create(**body):
            texts += [c.delta.content for c in chunk.choices if c.delta.content]
            usage = chunk.usage or usage
    finally:
        await backend.close()
        await sdk.close()
    ours_sent, sdk_sent = wire.log
    assert (ours_sent.path, ours_sent.body) == (sdk_sent.path, sdk_sent.body)
    assert [c.text for c in chunks if not c.final] == texts
    summary = chunks[-1].summary
    assert usage is not None and summary.text == "".join(texts)
    assert (summary.usage.input_tokens, summary.usage.output_tokens) == (usage.prompt_tokens, usage.completion_tokens)


async def _refusal_of(reply: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[BackendError, int]:
    """The BackendError of one generation from a provider whose chat-completions endpoint is
    `reply` (up to two retries allowed), and how many calls reached the provider."""
    calls = 0

    async def counted(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        answer: web.StreamResponse = await reply(request)
        return answer

    monkeypatch.setenv("WIRE_API_KEY", KEY)
    async with _provider(counted) as base_url:
        backend = make_backend("openai", wire_model(base_url), timeout_s=2.0, max_retries=2)
        try:
            with pytest.raises(BackendError) as err:
                await backend.generate(request())
        finally:
            await backend.close()
    return err.value, calls


@contextlib.asynccontextmanager
async def _provider(reply: Any) -> AsyncIterator[str]:
    """A provider whose chat-completions endpoint is `reply`; yields its base URL."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", reply)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "answer",
    [b"<html>bad gateway</html>", b"[1, 2]", b'{"choices": []}', b'{"choices": [{"message": null}]}',
     b'{"choices": [{"message": {"content": "hi"}, "logprobs": {"content": [{"logprob": "x"}]}}]}'],
    ids=["not-json", "not-an-object", "no-choices", "no-message", "logprob-not-a-number"],
)  # fmt: skip
async def test_an_answer_that_is_no_chat_completion_is_a_clear_fault(
    answer: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def reply(_request: web.Request) -> web.Response:
        return web.Response(body=answer, content_type="application/json")

    error, calls = await _refusal_of(reply, monkeypatch)
    assert error.code == grpc.StatusCode.UNAVAILABLE  # the router falls back on it
    assert error.message.startswith("wire: MalformedAnswer: ")
    assert calls == 1  # it answered, and may have billed it: not asked again


async def test_an_error_body_that_arrives_in_pieces_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'{"error": {"type": "invalid_request_error", "message": "max_tokens: too large for this model"}}'

    async def reply(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(status=400, headers={"Content-Type": "application/json"})
        await answer.prepare(request)
        for piece in (body[:20], body[20:50], body[50:]):
            await answer.write(piece)
            await asyncio.sleep(0.05)  # separate reads at the client
        await answer.write_eof()
        return answer

    error, calls = await _refusal_of(reply, monkeypatch)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and calls == 1  # a 400 is not retried
    assert error.message == "wire HTTP 400: invalid_request_error: max_tokens: too large for this model"


async def test_an_answer_too_large_to_be_one_is_refused_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_http, "MAX_ANSWER_BODY", 4096)  # the real limit is 32 MiB

    async def reply(_request: web.Request) -> web.Response:
        content = "x" * 10_000
        return web.json_response({"choices": [{"message": {"content": content}, "finish_reason": "stop"}]})

    error, calls = await _refusal_of(reply, monkeypatch)
    assert error.code == grpc.StatusCode.UNAVAILABLE and calls == 1
    assert "answer: larger than 4096 bytes" in error.message


async def test_a_burst_of_requests_shares_a_bounded_number_of_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_http, "MAX_CONNECTIONS", 3)  # the real bound is 1000, as the SDK's
    peers: set[object] = set()
    in_flight = most = 0

    async def reply(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.json_response({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]})

    client = openai_http.ChatCompletionsHTTP({}, timeout_s=5)
    async with _provider(reply) as base_url:
        try:
            ask = [client.create(f"{base_url}/chat/completions", {"model": "m", "messages": []}) for _ in range(12)]
            answers = await asyncio.gather(*ask)
        finally:
            await client.close()
    assert len(answers) == 12  # every request answered...
    assert most == 3 and len(peers) == 3  # ...over three connections, each reused
