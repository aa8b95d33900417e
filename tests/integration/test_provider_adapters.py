"""Provider adapters through the official SDKs (openai, its Azure client, anthropic, google-genai on
the Gemini API and on Vertex AI, boto3's Bedrock Runtime) against local servers that speak each
provider's wire format (Azure: deployment paths, api-version, api-key; Vertex: a service account's
OAuth token; Bedrock: SigV4 and the binary event stream): text, usage, logprobs, streaming, and
every fault mapped. The shared adapter contract: every test here runs for every protocol."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.wire.server import ANSWER_TOKENS, TOKEN_LOGPROB, WireServer
from tests.wire.stack import aws_env
from tierlift.adapters import BackendError
from tierlift.adapters.anthropic_messages import AnthropicBackend
from tierlift.adapters.bedrock import BedrockBackend
from tierlift.adapters.gemini import GeminiBackend
from tierlift.adapters.openai_compat import AzureOpenAIBackend, OpenAICompatBackend
from tierlift.core.catalog import Model
from tierlift.core.entry import StartupError
from tierlift.core.tokens import estimate_tokens
from tierlift.v1 import adapter_pb2, common_pb2

PROTOCOLS = ["openai", "anthropic", "azure", "gemini", "vertex", "bedrock"]
NO_LOGPROBS = ("anthropic", "bedrock")  # their APIs give none
NO_SEED_OR_JSON = ("anthropic", "bedrock")  # refused before any call, never dropped silently
# the regional clouds: the region each test model calls
CLOUD_REGION = {"vertex": "europe-west4", "bedrock": "eu-central-1"}


def make_backend(protocol: str, model: Model, timeout_s: float, max_retries: int) -> Any:
    if protocol in ("gemini", "vertex"):
        return GeminiBackend("wire", [model], timeout_s, max_retries, vertex=protocol == "vertex")
    backend = {"openai": OpenAICompatBackend, "anthropic": AnthropicBackend, "azure": AzureOpenAIBackend,
               "bedrock": BedrockBackend}[protocol]  # fmt: skip
    return backend("wire", [model], timeout_s, max_retries)


def wire_model(endpoint: str, logprobs: bool = True, key_env: str = "WIRE_API_KEY", protocol: str = "") -> Model:
    keyed = protocol not in CLOUD_REGION  # Vertex and Bedrock take the cloud's own credentials
    return Model.model_validate(
        {
            "id": "wire-model",
            "tier": "HOSTED_OPEN",
            "provider": "wire",
            "adapter": "wire",
            "upstream_model": "org/wire-model-8b",
            "endpoint": endpoint,
            "cloud_region": CLOUD_REGION.get(protocol, ""),
            "regions": ["eu"] if protocol in CLOUD_REGION else ["any"],  # where those cloud regions are
            "licence": {"name": "test"},
            "context_window": 8192,
            "capabilities": {"streaming": True, "logprobs": logprobs and protocol not in NO_LOGPROBS},
            "price": {"api": {"input_per_million": "0.10", "output_per_million": "0.20"}},
            "api_key_env": key_env if keyed else "",
        }
    )


def cloud_credentials(protocol: str, endpoint: str, key: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What Vertex AI and Bedrock read from the environment in production, pointed at the wire
    server: a service account whose token endpoint is the server; an AWS access key."""
    if protocol == "vertex":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        account = {"type": "service_account", "project_id": "wire-project", "private_key_id": "k1",
                   "private_key": pem.decode(), "client_email": "router@wire-project.iam.gserviceaccount.com",
                   "client_id": "1", "token_uri": f"{endpoint}/token"}  # fmt: skip
        (tmp / "service-account.json").write_text(json.dumps(account))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp / "service-account.json"))
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "wire-project")
    if protocol == "bedrock":
        for name, value in aws_env(tmp, access_key_id=key).items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=PROTOCOLS)
def wire(request: pytest.FixtureRequest) -> Iterator[WireServer]:
    server = WireServer(protocol=request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def backend(wire: WireServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Any]:
    monkeypatch.setenv("WIRE_API_KEY", "sk-wire-test")
    cloud_credentials(wire.protocol, wire.endpoint, "AKIAWIRETEST", tmp_path, monkeypatch)
    # short timeout so the "slow" fault is quick to provoke
    model = wire_model(wire.endpoint, protocol=wire.protocol)
    b = make_backend(wire.protocol, model, timeout_s=1.0, max_retries=2)
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
    assert len(wire.log) == 1
    assert wire.sent(0)["model"] == "org/wire-model-8b"
    assert wire.sent(0)["max_tokens"] == 16
    assert wire.sent(0)["system"] == "Be brief."
    if wire.protocol in CLOUD_REGION:  # the regional clouds: signed for, or addressed to, the model's region
        where = wire.log[0].region if wire.protocol == "bedrock" else wire.log[0].path
        assert CLOUD_REGION[wire.protocol] in where


async def test_logprobs_where_the_provider_gives_them(wire: WireServer, backend: Any) -> None:
    reply = await backend.generate(request())
    if wire.protocol not in NO_LOGPROBS:
        assert wire.sent(0)["logprobs"] is True
        assert reply.confidence.has_logprobs and reply.confidence.token_count == len(ANSWER_TOKENS)
        assert reply.confidence.mean_logprob == pytest.approx(TOKEN_LOGPROB)
    else:  # Anthropic and Bedrock have none, and the signals say so
        assert not reply.confidence.has_logprobs


async def test_stream_yields_chunks_in_order_then_usage(backend: Any) -> None:
    chunks = [c async for c in backend.stream(request())]
    assert [c.text for c in chunks[:-1]] == ANSWER_TOKENS
    final = chunks[-1]
    assert final.final and final.summary.text == "".join(ANSWER_TOKENS)
    assert (final.summary.usage.input_tokens, final.summary.usage.output_tokens) == (7, len(ANSWER_TOKENS))


# the providers that report cache writes (the caller marks what to cache), and those that report
# reasoning apart (Anthropic's and Bedrock's thinking is in their output count, not given apart)
WRITES_CACHE = ("anthropic", "bedrock")
REASONING_APART = ("openai", "azure", "gemini", "vertex")


async def _usage_of(backend: Any, streamed: bool) -> common_pb2.Usage:
    if streamed:
        chunks = [c async for c in backend.stream(request())]
        usage: common_pb2.Usage = chunks[-1].summary.usage
        return usage
    return (await backend.generate(request())).usage


@pytest.mark.parametrize("streamed", [False, True], ids=["generate", "stream"])
async def test_cached_prompt_and_reasoning_tokens_reach_usage_in_one_convention(
    wire: WireServer, backend: Any, streamed: bool
) -> None:
    """Whatever each provider counts in its input and output (Anthropic's and Bedrock's input leaves
    the cache out, Gemini's candidates leave thoughts out), input_tokens counts every input token
    and output_tokens every output token, and the kinds say how many were cache reads, writes and
    reasoning."""
    wire.prompt_cache, wire.reasoning_tokens = True, 9
    first, again = await _usage_of(backend, streamed), await _usage_of(backend, streamed)
    reasoning = 9 if wire.protocol in REASONING_APART else 0
    written = 7 if wire.protocol in WRITES_CACHE else 0
    assert first == common_pb2.Usage(input_tokens=7, output_tokens=len(ANSWER_TOKENS) + 9,
                                     cache_write_input_tokens=written, reasoning_output_tokens=reasoning)  # fmt: skip
    assert again == common_pb2.Usage(input_tokens=7, output_tokens=len(ANSWER_TOKENS) + 9,
                                     cache_read_input_tokens=7, reasoning_output_tokens=reasoning)  # fmt: skip


async def test_an_hours_cache_writes_are_told_apart(wire: WireServer, backend: Any) -> None:
    wire.prompt_cache, wire.cache_ttl = True, "1h"
    usage = (await backend.generate(request())).usage
    if wire.protocol in WRITES_CACHE:
        assert (usage.cache_write_input_tokens, usage.cache_write_1h_input_tokens) == (7, 7)
    else:  # OpenAI and Gemini report no writes
        assert (usage.cache_write_input_tokens, usage.cache_write_1h_input_tokens) == (0, 0)


async def test_transient_5xx_and_429_are_retried_by_the_sdk(wire: WireServer, backend: Any) -> None:
    wire.script.extend(["500", "429:0"])
    reply = await backend.generate(request())
    assert reply.text
    assert len(wire.log) == 3


async def test_consecutive_messages_of_one_role_reach_the_provider_as_it_accepts_them(
    wire: WireServer, backend: Any
) -> None:
    asked = request()
    asked.messages.append(common_pb2.Message(role="user", content="Answer in one word."))
    reply = await backend.generate(asked)  # Bedrock's Converse refuses roles that do not alternate
    assert reply.text == "".join(ANSWER_TOKENS)
    assert reply.usage.input_tokens == 7 + 4  # nothing dropped


async def test_a_stream_is_retried_until_it_opens(wire: WireServer, backend: Any) -> None:
    wire.script.extend(["500", "429:0"])
    chunks = [c async for c in backend.stream(request())]
    assert chunks[-1].final and chunks[-1].summary.text == "".join(ANSWER_TOKENS)
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


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
def test_missing_api_key_stops_the_adapter_naming_the_variable(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    monkeypatch.delenv("WIRE_API_KEY", raising=False)
    with pytest.raises(StartupError, match="WIRE_API_KEY: not set"):
        make_backend(protocol, wire_model("http://127.0.0.1:9/v1"), 1.0, 0)


def test_the_regional_clouds_stop_at_start_without_their_region_project_or_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cloud_credentials("bedrock", "", "AKIAWIRETEST", tmp_path, monkeypatch)
    regionless = wire_model("http://127.0.0.1:9").model_copy(update={"api_key_env": ""})
    with pytest.raises(StartupError, match="model wire-model has no cloud_region"):
        make_backend("bedrock", regionless, 1.0, 0)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StartupError, match="AWS credentials: none found"):
        make_backend("bedrock", wire_model("http://127.0.0.1:9", protocol="bedrock"), 1.0, 0)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(StartupError, match="GOOGLE_CLOUD_PROJECT: not set"):
        make_backend("vertex", wire_model("http://127.0.0.1:9", protocol="vertex"), 1.0, 0)


async def test_a_providers_error_reaches_the_caller_sanitised_and_the_log_whole(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if wire.protocol == "vertex":
        pytest.skip("Vertex AI takes OAuth tokens minted for the service account, not a key to refuse")
    wire.key = "sk-the-right-one"  # the provider refuses the key and echoes it back, as some do
    monkeypatch.setenv("WIRE_API_KEY", "sk-live-0123456789abcdefghijklmnop")
    # an AWS access key id is not secret, but the test's echo check works the same on it
    cloud_credentials(wire.protocol, wire.endpoint, "sk-live-0123456789abcdefghijklmnop", tmp_path, monkeypatch)
    b = make_backend(wire.protocol, wire_model(wire.endpoint, protocol=wire.protocol), timeout_s=1.0, max_retries=0)
    try:
        with pytest.raises(BackendError) as err:
            await b.generate(request())
    finally:
        await b.close()
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
    refused_with = {"gemini": 400, "bedrock": 403}.get(wire.protocol, 401)  # the Gemini API: 400 API_KEY_INVALID
    assert f"HTTP {refused_with}" in err.value.message and "[redacted]" in err.value.message
    assert "0123456789abcdef" not in err.value.message and len(err.value.message) <= 240
    # the backend keeps the whole answer; the servicer scrubs it before any log line (core/scrub.py,
    # tests/integration/test_secrets_at_rest.py)
    assert "0123456789abcdef" in err.value.detail


async def test_seed_and_json_mode_reach_the_provider_or_are_refused_before_any_call(
    wire: WireServer, backend: Any
) -> None:
    asked = request()
    asked.params.seed = 7
    asked.params.response_format = "json_object"
    if wire.protocol in NO_SEED_OR_JSON:
        with pytest.raises(BackendError) as err:
            await backend.generate(asked)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and err.value.message.startswith("params.seed")
        assert wire.log == []  # refused before any call
        return
    await backend.generate(asked)
    assert wire.sent(0)["seed"] == 7 and wire.sent(0)["json"]


async def test_a_json_schema_reaches_the_provider_or_is_refused_before_any_call(wire: WireServer, backend: Any) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    asked = request()
    asked.params.response_format = "json_schema"
    asked.params.json_schema = json.dumps({"name": "City", "strict": True, "schema": schema})
    if wire.protocol in NO_SEED_OR_JSON:
        with pytest.raises(BackendError) as err:
            await backend.generate(asked)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "response_format" in err.value.message
        assert wire.log == []
        return
    await backend.generate(asked)
    assert wire.sent(0)["json"] is (wire.protocol in ("gemini", "vertex")) and wire.sent(0)["schema"] == schema


async def test_gemini_waits_the_delay_its_429_asks_for_and_not_a_longer_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = WireServer(protocol="gemini")
    server.start()
    monkeypatch.setenv("WIRE_API_KEY", "k")
    b = GeminiBackend("wire", [wire_model(server.endpoint, protocol="gemini")], timeout_s=2.0, max_retries=2)
    try:
        server.script.append("429:0.4")  # RetryInfo.retryDelay "0.4s"
        assert (await b.generate(request())).text
        assert len(server.log) == 2 and server.log[1].at - server.log[0].at >= 0.4  # the retry waited as asked
        server.script.append("429:30")  # longer than MAX_RETRY_WAIT_S: the router falls back instead
        with pytest.raises(BackendError) as err:
            await b.generate(request())
        assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and len(server.log) == 3
        server.script.append("429:nan")  # a delay that is no number: our own backoff, then the answer
        assert (await b.generate(request())).text and len(server.log) == 5
    finally:
        await b.close()
        server.stop()


TOOLS_MAPPED = ("openai", "azure", "anthropic", "gemini", "vertex", "bedrock")
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def test_a_tool_call_and_its_result_travel_in_each_providers_own_form(wire: WireServer, backend: Any) -> None:
    asked = request()
    asked.params.tools.add(name="get_weather", description="The weather in a city", parameters=json.dumps(WEATHER))
    asked.params.tool_choice = "required"
    if wire.protocol not in TOOLS_MAPPED:
        with pytest.raises(BackendError) as err:
            await backend.generate(asked)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and err.value.message.startswith("params.tools")
        assert wire.log == []
        return
    called = await backend.generate(asked)
    [call] = called.tool_calls
    assert (call.name, json.loads(call.arguments), called.finish_reason) == ("get_weather", {"city": "Paris"},
                                                                              "tool_calls")  # fmt: skip
    sent = wire.log[0].body
    if wire.protocol == "anthropic":
        assert sent["tools"][0]["input_schema"] == WEATHER and sent["tool_choice"] == {"type": "any"}
    elif wire.protocol == "bedrock":
        spec = {"name": "get_weather", "description": "The weather in a city", "inputSchema": {"json": WEATHER}}
        assert sent["toolConfig"] == {"tools": [{"toolSpec": spec}], "toolChoice": {"any": {}}}
    elif wire.protocol in ("gemini", "vertex"):
        declared = sent["tools"][0]["functionDeclarations"][0]
        assert (declared.get("parametersJsonSchema") or declared.get("parameters_json_schema")) == WEATHER
        assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    else:
        assert sent["tools"][0]["function"]["parameters"] == WEATHER and sent["tool_choice"] == "required"
    streamed = [c async for c in backend.stream(asked)]
    streamed_calls = [(c.name, json.loads(c.arguments)) for c in streamed[-1].summary.tool_calls]
    assert streamed_calls == [("get_weather", {"city": "Paris"})]

    answered = request()
    answered.params.CopyFrom(asked.params)
    answered.params.tool_choice = "auto"
    answered.messages.add(role="assistant", tool_calls=[call])
    answered.messages.add(role="tool", tool_call_id=call.id, content="18 degrees")
    reply = await backend.generate(answered)
    assert reply.text == "The tool said: 18 degrees" and not reply.tool_calls
    if wire.protocol in ("gemini", "vertex"):  # functionCall in the model's turn, functionResponse after it
        contents = wire.log[-1].body["contents"]
        called = {"id": call.id, "name": "get_weather", "args": {"city": "Paris"}}
        assert contents[-2] == {"role": "model", "parts": [{"functionCall": called}]}
        response = {"id": call.id, "name": "get_weather", "response": {"result": "18 degrees"}}
        assert contents[-1] == {"role": "user", "parts": [{"functionResponse": response}]}
        return
    turns = wire.log[-1].body["messages"]
    if wire.protocol == "bedrock":  # toolUse in the assistant's turn, toolResult in a user turn
        use = {"toolUse": {"toolUseId": call.id, "name": "get_weather", "input": {"city": "Paris"}}}
        assert turns[-2] == {"role": "assistant", "content": [use]}
        result = {"toolResult": {"toolUseId": call.id, "content": [{"text": "18 degrees"}]}}
        assert turns[-1] == {"role": "user", "content": [result]}
        return
    if wire.protocol == "anthropic":  # tool_use in the assistant's turn, tool_result in a user turn
        assert turns[-2]["content"][0] == {"type": "tool_use", "id": call.id, "name": "get_weather",
                                           "input": {"city": "Paris"}}  # fmt: skip
        assert turns[-1] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                          "content": "18 degrees"}]}  # fmt: skip
    else:
        assert turns[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": call.arguments}
        assert turns[-1] == {"role": "tool", "content": "18 degrees", "tool_call_id": call.id}


EMBEDS = ("openai", "azure", "gemini", "vertex", "bedrock")  # Anthropic has no embeddings API


async def test_embeddings_come_from_each_providers_own_api(wire: WireServer, backend: Any) -> None:
    asked = adapter_pb2.EmbeddingsRequest(model="wire-model", inputs=["The cat sat.", "A dog ran far."], dimensions=8)
    if wire.protocol not in EMBEDS:
        assert not hasattr(backend, "embed")  # the servicer answers UNIMPLEMENTED
        return
    reply = await backend.embed(asked)
    assert [len(v.values) for v in reply.vectors] == [8, 8] and reply.vectors[0].values != reply.vectors[1].values
    # the provider's count (the wire's: words) where its API reports one; the Gemini API reports none: ours
    counted = sum(estimate_tokens(t) for t in asked.inputs) if wire.protocol == "gemini" else 7
    assert reply.usage.input_tokens == counted
    path = wire.log[-1].path
    assert {"openai": "/v1/embeddings", "bedrock": "/invoke", "gemini": ":batchEmbedContents",
            "vertex": ":predict", "azure": "/embeddings?api-version="}[wire.protocol] in path  # fmt: skip
