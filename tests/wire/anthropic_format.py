"""Anthropic messages payloads: message, SSE events (message_start ... message_stop), errors.
Anthropic gives no token logprobs."""

from __future__ import annotations

from typing import Any

from tests.wire.openai_format import ANSWER_TOKENS, prompt_tokens

PATH = "/v1/messages"
STREAM_END = b""
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _message(body: dict[str, Any], content: list[dict[str, Any]], output_tokens: int) -> dict[str, Any]:
    return {
        "id": "msg_wire",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": "end_turn" if output_tokens else None,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_tokens(body), "output_tokens": output_tokens},
    }


def completion(body: dict[str, Any]) -> dict[str, Any]:
    return _message(body, [{"type": "text", "text": "".join(ANSWER_TOKENS)}], len(ANSWER_TOKENS))


def stream_events(body: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
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
                "usage": {"output_tokens": len(ANSWER_TOKENS)},
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
