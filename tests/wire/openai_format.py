"""OpenAI chat-completions payloads: completion, SSE chunks (logprobs, usage), error bodies."""

from __future__ import annotations

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


def _usage(body: dict[str, Any]) -> dict[str, int]:
    prompt = prompt_tokens(body)
    return {"prompt_tokens": prompt, "completion_tokens": len(ANSWER_TOKENS), "total_tokens": prompt + 5}


def _token_logprob(token: str) -> dict[str, Any]:
    return {"token": token, "logprob": TOKEN_LOGPROB, "bytes": list(token.encode()), "top_logprobs": []}


def completion(body: dict[str, Any]) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": "".join(ANSWER_TOKENS)},
        "finish_reason": "stop",
        "logprobs": None,
    }
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
