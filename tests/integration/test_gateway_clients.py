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


def test_langchain_json_mode_is_taken_and_a_schema_is_refused_by_name(stack: Stack) -> None:
    chat = _chat(stack, max_tokens=24)
    prompt = 'Reply with JSON only: {"name": "<the capital of France>"}'
    # JSON mode asks for a JSON object (the small local model may not fill it as asked)
    raw = chat.bind(response_format={"type": "json_object"}).invoke(prompt)
    assert isinstance(raw.content, str) and raw.content
    with pytest.raises(openai.BadRequestError) as refused:
        chat.with_structured_output(_City).invoke(prompt)  # LangChain's default: a JSON schema
    assert refused.value.status_code == 400 and "response_format" in str(refused.value)
    with pytest.raises(openai.BadRequestError) as no_tools:
        chat.bind_tools([_City]).invoke(prompt)
    assert "tools" in str(no_tools.value)
