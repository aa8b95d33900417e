"""Agents on the real stack: tool calls through the OpenAI edge with the official SDK and
LangChain, from a closed model (a wire server speaking OpenAI's protocol) and from the local
model (llama.cpp samples the call under a grammar made from the tools' schemas); the tool's
result sent back gets a final answer; a streamed call is put together by the SDK; a call whose
arguments fail the tool's schema is escalated, and one that no rung gets right is a clear error."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import grpc
import jsonschema
import openai
import pytest
import yaml
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
           "required": ["city", "unit"], "additionalProperties": False}  # fmt: skip
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                           "parameters": WEATHER}}]  # fmt: skip
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    server = WireServer(served_models=["wire-cheap", "wire-strong"])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(wire: WireServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = Path(tmp_path_factory.mktemp("agents"))
    tools = {"streaming": True, "logprobs": True, "tools": True, "vision": True, "json_schema": True}
    packaged = {m["id"]: m for m in yaml.safe_load(DEFAULT_CATALOG.read_text())["models"]}
    models = [packaged["gemma-3-270m-cpu"], packaged["minilm-l6-static-cpu"],
              wire_model("wire-cheap", "CLOSED", wire.endpoint, "1.00", capabilities=tools),
              wire_model("wire-strong", "FRONTIER", wire.endpoint, "10.00", capabilities=tools),
              wire_model("wire-embed", "CLOSED", wire.endpoint, "0.02", capabilities={"embeddings": True})]  # fmt: skip
    running = start_provider_stack(state, models, {"openai-wire": "openai", "llamacpp-local": "llamacpp"})
    yield running
    running.stop()


def _sdk(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.openai_base_url, api_key=stack.keys["app"], max_retries=0)


def test_a_closed_model_calls_a_tool_and_answers_from_its_result(stack: Stack) -> None:
    client = _sdk(stack)
    first = client.chat.completions.create(model="tierlift/closed", messages=ASK, tools=TOOLS)  # type: ignore[arg-type]
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)  # type: ignore[union-attr]
    history: list[Any] = [*ASK, choice.message.model_dump(exclude_none=True),
                          {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]  # fmt: skip
    second = client.chat.completions.create(model="tierlift/closed", messages=history, tools=TOOLS)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "The tool said: 18 degrees and sunny"
    assert second.choices[0].finish_reason == "stop"


def test_a_streamed_tool_call_is_put_together_by_the_sdk(stack: Stack) -> None:
    chunks = list(_sdk(stack).chat.completions.create(model="tierlift/closed", messages=ASK, tools=TOOLS,  # type: ignore[arg-type]
                                                      stream=True))  # fmt: skip
    assert len({c.id for c in chunks}) == 1 and len({c.model for c in chunks}) == 1  # one id, one model throughout
    arguments, names = "", []
    for c in chunks:
        for delta in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            names += [delta.function.name] if delta.function and delta.function.name else []
            arguments += delta.function.arguments or "" if delta.function else ""
    assert names == ["get_weather"]
    jsonschema.validate(json.loads(arguments), WEATHER)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_the_local_model_calls_a_tool_under_its_schema(stack: Stack) -> None:
    reply = _sdk(stack).chat.completions.create(model="tierlift/local-only", messages=ASK, tools=TOOLS,  # type: ignore[arg-type]
                                                tool_choice="required", max_tokens=64)  # fmt: skip
    [call] = reply.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)  # type: ignore[union-attr]
    assert reply.model == "gemma-3-270m-cpu"


def _complete(stack: Stack) -> router_pb2.CompleteResponse:
    tools = [common_pb2.Tool(name="get_weather", parameters=json.dumps(WEATHER))]
    request = router_pb2.CompleteRequest(
        tenant="dev", workload="agents", messages=[common_pb2.Message(role="user", content=ASK[0]["content"])],
        params=common_pb2.GenerationParams(tools=tools, tool_choice="required"),
        constraints=router_pb2.Constraints(allowed_tiers=[common_pb2.TIER_CLOSED, common_pb2.TIER_FRONTIER]),
    )  # fmt: skip
    with stack.channel("router") as channel:
        return router_pb2_grpc.RouterStub(channel).Complete(request, timeout=60)  # type: ignore[no-any-return]


def test_arguments_that_fail_the_schema_are_escalated_and_a_ladder_of_them_is_an_error(
    stack: Stack, wire: WireServer
) -> None:
    wire.tool_arguments = lambda body: (
        '{"city": 5}' if body["model"] == "wire-cheap" else '{"city": "Oslo", "unit": "c"}'
    )
    try:
        reply = _complete(stack)
        assert reply.model == "wire-strong" and json.loads(reply.tool_calls[0].arguments)["city"] == "Oslo"
        first = reply.attempts[0]
        assert first.model == "wire-cheap" and first.outcome == router_pb2.OUTCOME_LOW_CONFIDENCE
        assert "tool_calls[0].arguments: does not follow the schema" in first.reason
        wire.tool_arguments = lambda body: "not json"
        with pytest.raises(grpc.RpcError) as failed:
            _complete(stack)
        assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
        assert "the answer fails its check: tool_calls[0].arguments: is not JSON" in failed.value.details()  # type: ignore[attr-defined]
    finally:
        wire.tool_arguments = None


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"18 degrees in {city}"


def test_a_langchain_agent_loop_runs_through_the_edge(stack: Stack) -> None:
    chat = ChatOpenAI(model="tierlift/closed", base_url=stack.openai_base_url, api_key=stack.keys["app"],
                      max_retries=0).bind_tools([get_weather])  # fmt: skip
    messages: list[Any] = [HumanMessage("What is the weather in Paris?")]
    for _ in range(3):
        reply = chat.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            break
        for call in reply.tool_calls:
            messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    assert messages[1].tool_calls[0]["name"] == "get_weather"
    assert messages[-1].content == "The tool said: 18 degrees in Paris"


# -- every string a provider would receive is classified: a REGULATED value in any of them ---
SECRET = "SSN 219-09-9999"
JSON_TEXT = {"json_schema", "parameters", "arguments"}


def _full_request() -> router_pb2.CompleteRequest:
    """A request with every string field of its messages and parameters set (the test below
    checks that no string field of the protos is left out, so a new one must be added here)."""
    schema = {"name": "weather", "description": "a report", "schema": {"type": "object", "description": "d"}}
    return router_pb2.CompleteRequest(
        tenant="dev", workload="agents",
        messages=[
            common_pb2.Message(role="system", content="You report the weather."),
            common_pb2.Message(role="user", name="ann", parts=[
                common_pb2.ContentPart(type="text", text="Weather,"),
                common_pb2.ContentPart(type="text", text="Paris?"),
                common_pb2.ContentPart(type="image_url", image_url="https://example.com/map.png", detail="low")]),
            common_pb2.Message(role="assistant", tool_calls=[
                common_pb2.ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris", "unit": "c"}')]),
            common_pb2.Message(role="tool", tool_call_id="call_1", content="18 degrees"),
            common_pb2.Message(role="user", content="And tomorrow?"),
        ],
        params=common_pb2.GenerationParams(
            stop=["END"], tools=[common_pb2.Tool(name="get_weather", description="The weather in a city",
                                                 parameters=json.dumps(WEATHER))],
            tool_choice="required", response_format="json_schema", json_schema=json.dumps(schema),
        ),
        constraints=router_pb2.Constraints(allowed_tiers=[common_pb2.TIER_CLOSED, common_pb2.TIER_FRONTIER]),
    )  # fmt: skip


Step = tuple[str, int | None]  # a field's name, and the index in a repeated field


def _string_fields(message_type: Any, path: str = "") -> Iterator[str]:
    """Every string field below a message type, as 'Message.parts.text' (unset ones too)."""
    for field in message_type.fields:
        if field.type == field.TYPE_MESSAGE:
            yield from _string_fields(field.message_type, f"{path}{message_type.name}.{field.name}.")
        elif field.type == field.TYPE_STRING:
            yield f"{path}{message_type.name}.{field.name}"


def _set_strings(message: Any, steps: tuple[Step, ...] = (), path: str = "") -> Iterator[tuple[str, tuple[Step, ...]]]:
    """(descriptor path, steps from the request to it) of every string set in `message`."""
    for field, value in message.ListFields():
        items = list(enumerate(value)) if field.is_repeated else [(None, value)]
        for i, item in items:
            at, where = (*steps, (field.name, i)), f"{path}{message.DESCRIPTOR.name}.{field.name}"
            if field.type == field.TYPE_MESSAGE:
                yield from _set_strings(item, at, f"{where}.")
            elif field.type == field.TYPE_STRING:
                yield where, at


def _plant(request: router_pb2.CompleteRequest, steps: tuple[Step, ...]) -> None:
    """Put SECRET into the string `steps` lead to (inside the JSON where the text is JSON)."""
    holder: Any = request
    for name, index in steps[:-1]:
        holder = getattr(holder, name) if index is None else getattr(holder, name)[index]
    name, index = steps[-1]
    text = getattr(holder, name) if index is None else getattr(holder, name)[index]
    if name in JSON_TEXT:
        value = json.loads(text)
        (value.get("schema", value) if name == "json_schema" else value)["description"] = SECRET
        planted = json.dumps(value)
    else:
        planted = f"{text} {SECRET}"
    if index is None:
        setattr(holder, name, planted)
    else:
        getattr(holder, name)[index] = planted


def test_a_regulated_value_in_any_string_a_provider_would_receive_never_reaches_a_closed_tier(
    stack: Stack, wire: WireServer
) -> None:
    """Each string of the messages and parameters, one at a time, holds a REGULATED value: the
    request is refused (kept off the closed tiers it asked for, or invalid), and the closed
    provider never hears of it. A string field added to the protos fails this test until the
    request above sets it."""
    base = _full_request()
    strings = [*_set_strings(base.params, (("params", None),)),
               *(s for i, m in enumerate(base.messages) for s in _set_strings(m, (("messages", i),)))]  # fmt: skip
    fields = {*_string_fields(common_pb2.Message.DESCRIPTOR), *_string_fields(common_pb2.GenerationParams.DESCRIPTOR)}
    assert fields <= {path for path, _ in strings}, f"set in _full_request: {sorted(fields - {p for p, _ in strings})}"
    with stack.channel("router") as channel:
        router = router_pb2_grpc.RouterStub(channel)
        assert router.Complete(base, timeout=60).tool_calls  # the public request reaches the closed tier
        calls = len(wire.log)
        for path, steps in strings:
            request = router_pb2.CompleteRequest()
            request.CopyFrom(base)
            _plant(request, steps)
            with pytest.raises(grpc.RpcError) as refused:
                router.Complete(request, timeout=60)
            code = refused.value.code()  # type: ignore[attr-defined]
            assert code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT), (path, code)
    assert len(wire.log) == calls, "a request holding a REGULATED value reached the closed tier"


def test_the_anthropic_sdk_gets_text_and_tool_use_from_the_messages_api(stack: Stack) -> None:
    """Anthropic's Messages API on the same router: the `anthropic` SDK by base URL, with its
    own key header, plain, streamed, and a tool loop in its blocks."""
    client = anthropic.Anthropic(base_url=stack.openai_base_url.removesuffix("/v1"), api_key=stack.keys["app"],
                                 max_retries=0)  # fmt: skip
    ask: list[Any] = [{"role": "user", "content": "What is the answer?"}]
    reply = client.messages.create(model="tierlift/closed", max_tokens=64, messages=ask)
    assert reply.content[0].type == "text" and reply.content[0].text == "The answer is 42."  # type: ignore[union-attr]
    assert reply.stop_reason == "end_turn" and reply.usage.output_tokens > 0
    with client.messages.stream(model="tierlift/closed", max_tokens=64, messages=ask) as streamed:
        assert "".join(streamed.text_stream) == "The answer is 42."
        assert streamed.get_final_message().stop_reason == "end_turn"

    tools: list[Any] = [{"name": "get_weather", "description": "The weather in a city", "input_schema": WEATHER}]
    weather: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    called = client.messages.create(model="tierlift/closed", max_tokens=64, messages=weather, tools=tools)
    [use] = [b for b in called.content if b.type == "tool_use"]
    assert called.stop_reason == "tool_use" and use.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(use.input, WEATHER)  # type: ignore[union-attr]
    weather += [{"role": "assistant", "content": [b.model_dump() for b in called.content]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,  # type: ignore[union-attr]
                                              "content": "18 degrees"}]}]  # fmt: skip
    answered = client.messages.create(model="tierlift/closed", max_tokens=64, messages=weather, tools=tools)
    assert answered.content[0].text == "The tool said: 18 degrees"  # type: ignore[union-attr]
    with client.messages.stream(model="tierlift/closed", max_tokens=64, messages=weather[:1], tools=tools) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["tool_use"] and final.stop_reason == "tool_use"
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="tierlift/closed", max_tokens=0, messages=ask)
    assert "max_tokens" in str(refused.value)


RESPONSE_TOOLS: list[Any] = [{"type": "function", "name": "get_weather", "description": "The weather in a city",
                              "parameters": WEATHER}]  # fmt: skip


def test_the_responses_api_gives_text_and_function_calls_to_the_sdk(stack: Stack) -> None:
    """OpenAI's Responses API, stateless: output text, a function call and its output sent back,
    the same streamed as typed events, and the state it cannot keep refused by name."""
    client = _sdk(stack)
    reply = client.responses.create(model="tierlift/closed", input="What is the answer?", instructions="Be brief.")
    assert reply.output_text == "The answer is 42." and reply.status == "completed"
    assert reply.usage is not None and reply.usage.output_tokens > 0

    called = client.responses.create(model="tierlift/closed", input="What is the weather in Paris?",
                                     tools=RESPONSE_TOOLS)  # fmt: skip
    [call] = [item for item in called.output if item.type == "function_call"]
    assert call.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.arguments), WEATHER)  # type: ignore[union-attr]
    follow_up: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}, call.model_dump(),
                            {"type": "function_call_output", "call_id": call.call_id, "output": "18 degrees"}]  # type: ignore[union-attr]  # fmt: skip
    answered = client.responses.create(model="tierlift/closed", input=follow_up, tools=RESPONSE_TOOLS)
    assert answered.output_text == "The tool said: 18 degrees"

    events = list(client.responses.create(model="tierlift/closed", input="What is the answer?", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "The answer is 42."
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    streamed = list(client.responses.create(model="tierlift/closed", input="What is the weather in Paris?",
                                            tools=RESPONSE_TOOLS, stream=True))  # fmt: skip
    done = [e for e in streamed if e.type == "response.function_call_arguments.done"]
    assert [e.name for e in done] == ["get_weather"]  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="tierlift/closed", input="Go on.", previous_response_id="resp_x")
    assert "previous_response_id" in str(refused.value)


def test_embeddings_are_routed_billed_and_kept_local_when_regulated(stack: Stack, wire: WireServer) -> None:
    """`/v1/embeddings` through the SDK: the local model's vectors (MiniLM's static ones, in the
    llama.cpp adapter's process) and a closed one's, equal in size within a model; a REGULATED
    text never leaves the LOCAL tier; each call billed in the ledger at its model's input price."""
    client = _sdk(stack)
    texts = ["The cat sat on the mat.", "Quarterly revenue grew by four percent."]
    local = client.embeddings.create(model="tierlift/local-only", input=texts)
    assert [len(d.embedding) for d in local.data] == [384, 384] and local.model == "minilm-l6-static-cpu"
    assert local.data[0].embedding != local.data[1].embedding and local.usage.prompt_tokens > 0
    closed = client.embeddings.create(model="tierlift/closed", input=texts, encoding_format="float")
    assert [len(d.embedding) for d in closed.data] == [16, 16] and closed.model == "wire-embed"
    assert [len(d.embedding) for d in client.embeddings.create(model="tierlift/closed", input=texts[0],
                                                                dimensions=8).data] == [8]  # fmt: skip
    calls = len(wire.log)
    secret = ["Patient record: SSN 219-09-9999"]
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.embeddings.create(model="tierlift/closed", input=secret)
    assert "no embedding model may serve this" in str(refused.value)
    kept = client.embeddings.create(model="tierlift/auto", input=secret)
    assert kept.model == "minilm-l6-static-cpu" and len(wire.log) == calls
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        for _ in range(100):
            lines = {line.model: line for line in ledger.GetSpend(ledger_pb2.SpendQuery(workload="default")).lines}
            if "wire-embed" in lines and "minilm-l6-static-cpu" in lines:
                break
            time.sleep(0.2)
    assert lines["wire-embed"].attempts == 2 and lines["wire-embed"].output_tokens == 0
    assert Decimal(lines["wire-embed"].cost_usd) == Decimal("0.02") * lines["wire-embed"].input_tokens / 10**6
    with pytest.raises(openai.BadRequestError) as bad:
        client.embeddings.create(model="tierlift/auto", input=[[1, 2, 3]])  # type: ignore[list-item]
    assert "input" in str(bad.value)


def test_an_image_reaches_a_vision_model_as_sent(stack: Stack, wire: WireServer) -> None:
    image = "https://example.com/chart.png"
    content: list[Any] = [{"type": "text", "text": "What does this chart show?"},
                          {"type": "image_url", "image_url": {"url": image, "detail": "low"}}]  # fmt: skip
    asked: list[Any] = [{"role": "user", "content": content}]
    reply = _sdk(stack).chat.completions.create(model="tierlift/closed", messages=asked,
                                                extra_headers={"x-tierlift-data-class": "public"})  # fmt: skip
    assert reply.choices[0].message.content
    assert wire.log[-1].body["messages"][-1]["content"] == content  # parts unchanged, image included
    with pytest.raises(openai.UnprocessableEntityError) as local:  # the local model has no vision
        _sdk(stack).chat.completions.create(
            model="tierlift/local-only", messages=[{"role": "user", "content": content}]
        )
    assert "no vision (capabilities.vision)" in str(local.value)


def test_a_langchain_agent_loop_runs_on_the_local_model(stack: Stack) -> None:
    """The same loop with the local 270M model: each of its calls samples a tool call (or an
    answer) under the tools' grammar, so every call it makes is one the tool can take."""
    chat = ChatOpenAI(model="tierlift/local-only", base_url=stack.openai_base_url, api_key=stack.keys["app"],
                      max_retries=0, max_tokens=64).bind_tools([get_weather])  # fmt: skip
    messages: list[Any] = [HumanMessage("What is the weather in Paris?")]
    calls = 0
    for _ in range(3):
        reply = chat.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            assert isinstance(reply.content, str)
            break
        for call in reply.tool_calls:
            assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
            messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
            calls += 1
    assert calls >= 1  # the loop ran: the model called the tool and was given its result
