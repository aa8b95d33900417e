"""OpenAI chat-completions payloads: completion, SSE chunks (logprobs, usage), error bodies."""

from __future__ import annotations

import json
import time
from typing import Any

PATH = "/v1/chat/completions"
STREAM_END = b"data: [DONE]\n\n"
ANSWER_TOKENS = ["The", " answer", " is", " 42", "."]
TOKEN_LOGPROB = -0.05
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_api_key", 429: "rate_limit_exceeded", 500: "server_error"}


def prompt_tokens(body: dict[str, Any]) -> int:
    """A word count stands in for the provider's tokenizer."""
    return sum(len(str(m["content"]).split()) for m in body["messages"]) + len(str(body.get("system", "")).split())


# Where the server puts what its prompt cache and scripted model make of a request (WireServer's
# `prompt_cache` and `reasoning_tokens`): {"cache_hit": bool, "cache_ttl": "5m" | "1h", "reasoning": int}.
KINDS = "_wire_usage_kinds"


def cache_counts(body: dict[str, Any], prompt: int, writes: bool) -> tuple[int, int]:
    """(tokens read from the cache, tokens written to it): a prompt seen before is read whole;
    a new one is written whole where the provider reports writes (Anthropic, Bedrock), as if its
    caller had marked it for caching."""
    kinds = body.get(KINDS) or {}
    if "cache_hit" not in kinds:
        return 0, 0
    return (prompt, 0) if kinds["cache_hit"] else (0, prompt if writes else 0)


def reasoning_tokens(body: dict[str, Any]) -> int:
    return int((body.get(KINDS) or {}).get("reasoning", 0))


def _usage(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage: prompt_tokens counts the cached ones, completion_tokens the reasoning ones;
    the details objects say how many (OpenAI caches automatically and reports no writes)."""
    prompt, reasoning = prompt_tokens(body), reasoning_tokens(body)
    cached, _ = cache_counts(body, prompt, writes=False)
    completion = len(ANSWER_TOKENS) + reasoning
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }  # fmt: skip


def _token_logprob(token: str) -> dict[str, Any]:
    return {"token": token, "logprob": TOKEN_LOGPROB, "bytes": list(token.encode()), "top_logprobs": []}


def example(schema: dict[str, Any]) -> Any:
    """A value that follows a (simple) JSON Schema: what a model calling the tool would write."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example(sub) for name, sub in properties.items() if name in schema.get("required", properties)}
    return {"string": "Paris", "integer": 3, "number": 2.5, "boolean": True, "array": []}.get(kind)


def tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A provider's tool call: the chosen tool (or the first) with arguments from its schema,
    unless tools are off, none are given, or the last message is a tool's result (then it answers)."""
    tools, choice = body.get("tools") or [], body.get("tool_choice", "auto")
    if not tools or choice == "none" or body["messages"][-1]["role"] == "tool":
        return []
    named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    tool = next((t for t in tools if t["function"]["name"] == named), tools[0])["function"]
    arguments = json.dumps(example(tool.get("parameters") or {"type": "object"}))
    return [{"id": f"call_wire{len(body['messages'])}", "type": "function",
             "function": {"name": tool["name"], "arguments": arguments}}]  # fmt: skip


def answer_text(body: dict[str, Any]) -> str:
    last = body["messages"][-1]
    return f"The tool said: {last['content']}" if last["role"] == "tool" else "".join(ANSWER_TOKENS)


def completion(body: dict[str, Any]) -> dict[str, Any]:
    calls = tool_calls(body)
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": None if calls else answer_text(body)},
        "finish_reason": "tool_calls" if calls else "stop",
        "logprobs": None,
    }
    if calls:
        choice["message"]["tool_calls"] = calls
    if body.get("logprobs"):
        choice["logprobs"] = {"content": [_token_logprob(t) for t in ANSWER_TOKENS]}
    return {
        "id": "chatcmpl-wire",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [choice],
        "usage": _usage(body),
    }


def stream_events(body: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    base = {
        "id": "chatcmpl-wire",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
    }
    chunks: list[dict[str, Any]] = []
    if calls := tool_calls(body):  # as OpenAI streams them: the name first, the arguments in pieces
        call = calls[0]
        head = {"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"],
                                                                               "arguments": ""}}  # fmt: skip
        arguments = call["function"]["arguments"]
        deltas = [head, *({"index": 0, "function": {"arguments": arguments[i : i + 8]}}
                          for i in range(0, len(arguments), 8))]  # fmt: skip
        for delta in deltas:
            chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [delta]}, "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": _usage(body)})
        return [(None, c) for c in chunks]
    for i, token in enumerate(ANSWER_TOKENS):
        delta = {"role": "assistant", "content": token} if i == 0 else {"content": token}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [_token_logprob(token)]}
        chunks.append({**base, "choices": [choice]})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": _usage(body)})
    return [(None, c) for c in chunks]


EMBEDDING_DIMENSIONS = 16


def vector(text: str, size: int) -> list[float]:
    """A provider's embedding of `text`: the same text, the same vector (within a test process)."""
    return [((hash(text) >> k) % 97) / 97 for k in range(size)]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/embeddings: a vector per input, made from the text (the same text, the same vector),
    `dimensions` long when asked; floats only (the SDKs' base64 is the edge's, not the provider's)."""
    texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
    size = body.get("dimensions") or EMBEDDING_DIMENSIONS
    data = [{"object": "embedding", "index": i, "embedding": vector(t, size)} for i, t in enumerate(texts)]
    tokens = sum(len(t.split()) for t in texts)
    return {"object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def models_body(ids: list[str]) -> dict[str, Any]:
    """GET /v1/models."""
    return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "wire"} for i in ids]}


def sent(body: dict[str, Any]) -> dict[str, Any]:
    """The request in the terms the contract tests compare."""
    return {
        "model": body["model"],
        "max_tokens": body.get("max_tokens"),
        "system": "".join(str(m["content"]) for m in body["messages"] if m["role"] == "system"),
        "logprobs": body.get("logprobs"),
        "seed": body.get("seed"),
        "json": body.get("response_format") == {"type": "json_object"},
        "schema": ((body.get("response_format") or {}).get("json_schema") or {}).get("schema"),
    }
