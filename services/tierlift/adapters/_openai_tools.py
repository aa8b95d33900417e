"""Tierlift's messages, tools and tool calls in OpenAI's chat-completions form, both ways: what
every OpenAI-compatible backend takes (OpenAI, Azure, Together, Fireworks, Groq, Mistral, vLLM
and SGLang with their tool parsers, Ollama) and what it answers, streamed tool calls included
(their deltas are joined by index, as the SDKs join them)."""

from __future__ import annotations

import json
from typing import Any

from tierlift.v1 import common_pb2


def message(m: common_pb2.Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if m.parts:
        out["content"] = [_part(p) for p in m.parts]
    elif m.content or not m.tool_calls:
        out["content"] = m.content
    else:
        out["content"] = None  # an assistant turn that only called tools
    if m.name:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    return out


def _part(p: common_pb2.ContentPart) -> dict[str, Any]:
    if p.type == "image_url":
        image: dict[str, Any] = {"url": p.image_url}
        if p.detail:
            image["detail"] = p.detail
        return {"type": "image_url", "image_url": image}
    return {"type": "text", "text": p.text}


def tool_params(p: common_pb2.GenerationParams) -> dict[str, Any]:
    """The body's `tools`, `tool_choice` and `parallel_tool_calls` ({} without tools)."""
    out: dict[str, Any] = {}
    if p.tools:
        out["tools"] = [_tool(t) for t in p.tools]
    if p.tool_choice in ("auto", "none", "required"):
        out["tool_choice"] = p.tool_choice
    elif p.tool_choice:
        out["tool_choice"] = {"type": "function", "function": {"name": p.tool_choice}}
    if p.HasField("parallel_tool_calls"):
        out["parallel_tool_calls"] = p.parallel_tool_calls
    return out


def _tool(t: common_pb2.Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": t.name}
    if t.description:
        function["description"] = t.description
    function["parameters"] = json.loads(t.parameters) if t.parameters else {"type": "object", "properties": {}}
    if t.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def tool_calls(answer: dict[str, Any]) -> list[common_pb2.ToolCall]:
    """The tool calls of a chat completion's message (none when it answered in text)."""
    return [
        common_pb2.ToolCall(
            id=c.get("id") or "", name=c["function"]["name"], arguments=c["function"].get("arguments") or "{}"
        )
        for c in answer.get("tool_calls") or []
    ]


class StreamedCalls:
    """Tool calls put together from a stream's deltas: the first delta of a call carries its
    index, id and name; later ones append to its arguments."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: list[dict[str, Any]]) -> None:
        for delta in deltas:
            call = self._calls.setdefault(
                int(delta.get("index", len(self._calls))), {"id": "", "name": "", "arguments": ""}
            )
            function = delta.get("function") or {}
            call["id"] = delta.get("id") or call["id"]
            call["name"] = function.get("name") or call["name"]
            call["arguments"] += function.get("arguments") or ""

    def calls(self) -> list[common_pb2.ToolCall]:
        return [common_pb2.ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"] or "{}")
                for _, c in sorted(self._calls.items())]  # fmt: skip
