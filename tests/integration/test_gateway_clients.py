"""Other clients than the `openai` SDK on the OpenAI-compatible edge, against the real stack:
LangChain's `ChatOpenAI` sends what it sends to OpenAI (its own defaults, `stream_options`), and
the edge takes it as it is; what it cannot honour is a 400 naming the parameter."""

from __future__ import annotations

import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tierlift.devstack import Stack


def _chat(stack: Stack, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI(
        model="tierlift/auto", base_url=stack.openai_base_url, api_key=stack.keys["app"], max_retries=0, **kwargs
    )


def test_langchain_invokes_and_streams(stack: Stack) -> None:
    chat = _chat(stack, max_tokens=8, stream_usage=True)
    messages = [SystemMessage("Answer in one word."), HumanMessage("What is the capital of France?")]
    reply = chat.invoke(messages)
    assert "Paris" in str(reply.content)
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0
    chunks = list(chat.stream(messages))
    assert "Paris" in "".join(str(c.content) for c in chunks)
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and usage[-1]["input_tokens"] > 0  # stream_usage: the edge's final usage chunk
    assert len(chat.batch([messages, messages])) == 2


class _City(BaseModel):
    name: str


def test_structured_outputs_from_langchain_and_the_sdk_follow_the_schema(stack: Stack) -> None:
    """LangChain's `with_structured_output` and the SDK's `parse` send a JSON Schema; the local
    model's sampling is held to it (llama.cpp turns the schema into a grammar), so even the 270M
    model's answer parses into the caller's type."""
    prompt = "What is the capital of France? Answer as JSON."
    city = _chat(stack, max_tokens=48).with_structured_output(_City).invoke(prompt)
    assert isinstance(city, _City) and city.name
    sdk = openai.OpenAI(base_url=stack.openai_base_url, api_key=stack.keys["app"], max_retries=0)
    parsed = sdk.chat.completions.parse(
        model="tierlift/auto", messages=[{"role": "user", "content": prompt}], response_format=_City, max_tokens=48
    )
    assert isinstance(parsed.choices[0].message.parsed, _City)
    # JSON mode, and a tool call: the local model samples it under a grammar made from the tool's schema
    raw = _chat(stack, max_tokens=24).bind(response_format={"type": "json_object"}).invoke(prompt)
    assert isinstance(raw.content, str) and raw.content.lstrip().startswith("{")
    called = _chat(stack, max_tokens=48).bind_tools([_City], tool_choice="_City").invoke(prompt)
    [call] = called.tool_calls
    assert call["name"] == "_City" and isinstance(call["args"]["name"], str)
    with pytest.raises(openai.BadRequestError) as bad_tools:
        _chat(stack).bind(tools=[{"type": "function", "function": {"name": "has space"}}]).invoke(prompt)
    assert bad_tools.value.status_code == 400 and "tools[0].name" in str(bad_tools.value)
