"""Anthropic messages payloads: message, SSE events (message_start ... message_stop), errors.
Anthropic gives no token logprobs."""

from __future__ import annotations

import json
from typing import Any

from tests.wire.openai_format import ANSWER_TOKENS, KINDS, cache_counts, example, prompt_tokens, reasoning_tokens

PATH = "/v1/messages"
STREAM_END = b""
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def tool_use(body: dict[str, Any]) -> dict[str, Any] | None:
    """Anthropic's model calling a tool: the chosen one (or the first) with input from its schema,
    unless no tools are given, tool_choice is none, or the last turn carries a tool's result."""
    tools, choice = body.get("tools") or [], body.get("tool_choice") or {"type": "auto"}
    last = body["messages"][-1]["content"]
    answering = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
    if not tools or choice["type"] == "none" or answering:
        return None
    tool = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
    return {"type": "tool_use", "id": f"toolu_wire{len(body['messages'])}", "name": tool["name"],
            "input": example(tool["input_schema"])}  # fmt: skip


def _answer(body: dict[str, Any]) -> str:
    last = body["messages"][-1]["content"]
    results = [b for b in last if b.get("type") == "tool_result"] if isinstance(last, list) else []
    return f"The tool said: {results[0]['content']}" if results else "".join(ANSWER_TOKENS)


def _message(body: dict[str, Any], content: list[dict[str, Any]], output_tokens: int) -> dict[str, Any]:
    stop = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
    return {
        "id": "msg_wire",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop if output_tokens else None,
        "stop_sequence": None,
        "usage": _usage(body, output_tokens),
    }


def _usage(body: dict[str, Any], output_tokens: int) -> dict[str, Any]:
    """Anthropic's usage: input_tokens leaves the cache reads and writes out; cache_creation splits
    the writes by lifetime. Extended thinking is in output_tokens, not reported apart."""
    prompt = prompt_tokens(body)
    read, written = cache_counts(body, prompt, writes=True)
    an_hour = written if (body.get(KINDS) or {}).get("cache_ttl") == "1h" else 0
    thinking = reasoning_tokens(body) if output_tokens else 0
    return {
        "input_tokens": prompt - read - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": written - an_hour, "ephemeral_1h_input_tokens": an_hour},
        "output_tokens": output_tokens + thinking,
    }


def completion(body: dict[str, Any]) -> dict[str, Any]:
    if (call := tool_use(body)) is not None:
        return _message(body, [call], len(ANSWER_TOKENS))
    return _message(body, [{"type": "text", "text": _answer(body)}], len(ANSWER_TOKENS))


def stream_events(body: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    if (call := tool_use(body)) is not None:  # the block first, then its input as JSON in pieces
        start = {**call, "input": {}}
        text = json.dumps(call["input"])
        deltas = [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "input_json_delta", "partial_json": text[i : i + 8]}})
                  for i in range(0, len(text), 8)]  # fmt: skip
        return [
            ("message_start", {"type": "message_start", "message": _message(body, [], 0)}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
            *deltas,
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                               "usage": {"output_tokens": len(ANSWER_TOKENS) + reasoning_tokens(body)}}),
            ("message_stop", {"type": "message_stop"}),
        ]  # fmt: skip
    events: list[tuple[str | None, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": _message(body, [], 0)}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for token in ANSWER_TOKENS:
        delta = {"type": "text_delta", "text": token}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(ANSWER_TOKENS) + reasoning_tokens(body)},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}}


def models_body(ids: list[str]) -> dict[str, Any]:
    """GET /v1/models."""
    data = [{"id": i, "type": "model", "display_name": i, "created_at": "2026-01-01T00:00:00Z"} for i in ids]
    return {"data": data, "has_more": False, "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}


def sent(body: dict[str, Any]) -> dict[str, Any]:
    """The request in the terms the contract tests compare."""
    return {
        "model": body["model"],
        "max_tokens": body.get("max_tokens"),
        "system": body.get("system", ""),
        "logprobs": None,
        "seed": body.get("seed"),
        "json": False,
        "schema": None,
    }
