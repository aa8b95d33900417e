"""Anthropic's messages API through the official `anthropic` SDK (JSON and SSE streaming,
usage). Anthropic gives no token logprobs: the signals say so, and the router falls back on
the tier's prior. Retries are the SDK's (bounded backoff, Retry-After on 429, 529 overload)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic
import grpc
from anthropic import AsyncAnthropic

from tierlift.adapters._backend import (
    BackendError,
    clients_by_model,
    description,
    final_chunk,
    map_error,
    signals_from_logprobs,
    text_of,
    text_only,
)
from tierlift.core import pricing
from tierlift.core.catalog import Model
from tierlift.v1 import adapter_pb2, common_pb2

DEFAULT_MAX_TOKENS = 512
# Anthropic's stop reasons in OpenAI's words, which the router and the edges speak
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                  "pause_turn": "stop", "refusal": "content_filter"}  # fmt: skip
_ERRORS: list[tuple[type[Exception], grpc.StatusCode]] = [
    (anthropic.RateLimitError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (anthropic.APITimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (anthropic.APIConnectionError, grpc.StatusCode.UNAVAILABLE),
    (anthropic.BadRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (anthropic.AuthenticationError, grpc.StatusCode.UNAUTHENTICATED),
    (anthropic.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (anthropic.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (anthropic.APIStatusError, grpc.StatusCode.UNAVAILABLE),  # 5xx, 529 overloaded
]


def _turns(messages: Sequence[common_pb2.Message]) -> list[dict[str, Any]]:
    """Messages as Anthropic's turns: an assistant's tool calls as `tool_use` blocks, tool results
    as `tool_result` blocks of one user turn (consecutive results share it, as the API asks)."""
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            result = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": text_of(m)}
            previous = turns[-1]["content"] if turns and turns[-1]["role"] == "user" else None
            if isinstance(previous, list) and all(b["type"] == "tool_result" for b in previous):
                previous.append(result)
            else:
                turns.append({"role": "user", "content": [result]})
        elif m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text_of(m)}] if text_of(m) else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)}
                       for c in m.tool_calls]  # fmt: skip
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": m.role, "content": text_of(m)})
    return turns


_CHOICES: dict[str, dict[str, Any]] = {
    "": {"type": "auto"}, "auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}
}  # fmt: skip


def _tools(p: common_pb2.GenerationParams) -> dict[str, Any]:
    """`tools` and `tool_choice` as Anthropic takes them ({} without tools)."""
    if not p.tools:
        return {}
    tools = [{"name": t.name, "description": t.description,
              "input_schema": json.loads(t.parameters) if t.parameters else {"type": "object", "properties": {}}}
             for t in p.tools]  # fmt: skip
    named = {"type": "tool", "name": p.tool_choice}
    choice: dict[str, Any] = _CHOICES.get(p.tool_choice, named).copy()
    if p.HasField("parallel_tool_calls") and not p.parallel_tool_calls and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    return {"tools": tools, "tool_choice": choice}


class AnthropicBackend:
    family = "anthropic"

    def __init__(self, adapter: str, models: Sequence[Model], timeout_s: float, max_retries: int) -> None:
        self.adapter = adapter
        self.models = {m.id: m for m in models}
        self._client_of = clients_by_model(
            adapter,
            models,
            lambda endpoint, key: AsyncAnthropic(
                base_url=endpoint, api_key=key, timeout=timeout_s, max_retries=max_retries
            ),
        )

    def describe(self) -> adapter_pb2.AdapterDescription:
        return description(self.adapter, self.family, list(self.models.values()), api_gives_logprobs=False)

    def _args(self, request: adapter_pb2.GenerateRequest) -> dict[str, Any]:
        model = self.models[request.model]
        # never dropped silently: the router moves on to a rung that can honour them
        if request.params.HasField("seed"):
            raise BackendError(
                grpc.StatusCode.INVALID_ARGUMENT, "params.seed: the Anthropic Messages API takes no seed"
            )
        if request.params.response_format in ("json_object", "json_schema"):
            raise BackendError(
                grpc.StatusCode.INVALID_ARGUMENT, "params.response_format: the Anthropic Messages API has no JSON mode"
            )
        text_only(request, "the Anthropic adapter", tools=True)
        system = "\n\n".join(text_of(m) for m in request.messages if m.role == "system")
        args: dict[str, Any] = {
            "model": model.upstream_model or model.id,
            "max_tokens": request.params.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": _turns(request.messages),
            **_tools(request.params),
        }
        if system:
            args["system"] = system
        if request.params.stop:
            args["stop_sequences"] = list(request.params.stop)
        return args

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        model = self.models[request.model]
        started = time.perf_counter()
        try:
            reply = await self._client_of[model.id].messages.create(**self._args(request))
        except anthropic.AnthropicError as exc:
            raise map_error(exc, _ERRORS, model.provider) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        calls = [common_pb2.ToolCall(id=b.id, name=b.name, arguments=json.dumps(b.input, separators=(",", ":")))
                 for b in reply.content if b.type == "tool_use"]  # fmt: skip
        return adapter_pb2.GenerateResponse(
            text="".join(block.text for block in reply.content if block.type == "text"),
            tool_calls=calls,
            finish_reason=FINISH_REASONS.get(reply.stop_reason or "", "stop"),
            usage=_usage(reply.usage),
            confidence=signals_from_logprobs([]),
            latency_ms=elapsed_ms,
            time_to_first_token_ms=elapsed_ms,
        )

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        model = self.models[request.model]
        started = time.perf_counter()
        pieces: list[str] = []
        counts: dict[str, Any] = {}  # Anthropic's usage fields: message_start's, then message_delta's
        calls: list[common_pb2.ToolCall] = []
        finish_reason, first_token_ms = "stop", 0.0
        try:
            events = await self._client_of[model.id].messages.create(**self._args(request), stream=True)
            async for event in events:
                if event.type == "message_start":
                    counts |= _reported(event.message.usage)
                elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                    calls.append(common_pb2.ToolCall(id=event.content_block.id, name=event.content_block.name))
                elif event.type == "content_block_delta" and event.delta.type == "input_json_delta" and calls:
                    calls[-1].arguments += event.delta.partial_json
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    first_token_ms = first_token_ms or (time.perf_counter() - started) * 1000
                    pieces.append(event.delta.text)
                    yield adapter_pb2.GenerateChunk(text=event.delta.text)
                elif event.type == "message_delta":
                    counts |= _reported(event.usage)  # cumulative: these replace message_start's
                    finish_reason = FINISH_REASONS.get(event.delta.stop_reason or "", finish_reason)
        except anthropic.AnthropicError as exc:
            raise map_error(exc, _ERRORS, model.provider) from exc
        final = final_chunk("".join(pieces), finish_reason, _usage(counts), [], started, first_token_ms)
        for call in calls:
            call.arguments = call.arguments or "{}"
        final.summary.tool_calls.extend(calls)
        yield final

    async def close(self) -> None:
        for client in set(self._client_of.values()):
            await client.close()


def _reported(usage: Any) -> dict[str, Any]:
    """The usage fields an Anthropic usage object (a message's, or a stream's cumulative delta)
    sets; the ones it leaves None are not reported there."""
    names = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
             "cache_creation", "output_tokens_details")  # fmt: skip
    return {name: value for name in names if (value := getattr(usage, name, None)) is not None}


def _usage(usage: Any) -> common_pb2.Usage:
    """Anthropic's usage in our convention. Its input_tokens leaves cache reads and writes out (they
    are the tokens before the last cache breakpoint): ours counts them. cache_creation splits the
    writes by lifetime; extended thinking is in output_tokens, and output_tokens_details says how
    much (where the API reports it)."""
    counts = usage if isinstance(usage, dict) else _reported(usage)
    read = counts.get("cache_read_input_tokens") or 0
    written = counts.get("cache_creation_input_tokens") or 0
    by_lifetime = counts.get("cache_creation")
    details = counts.get("output_tokens_details")
    return pricing.normalised(
        common_pb2.Usage(
            input_tokens=(counts.get("input_tokens") or 0) + read + written,
            output_tokens=counts.get("output_tokens") or 0,
            cache_read_input_tokens=read,
            cache_write_input_tokens=written,
            cache_write_1h_input_tokens=getattr(by_lifetime, "ephemeral_1h_input_tokens", 0) or 0,
            reasoning_output_tokens=getattr(details, "thinking_tokens", 0) or 0,
        )
    )
