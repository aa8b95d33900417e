"""Streams are never free: what an adapter's stream cost when no usage came with it.

An adapter asks its provider for usage on every stream (OpenAI's `stream_options.include_usage`,
Anthropic's message_start and message_delta, Gemini's usageMetadata, Bedrock's metadata event,
llama.cpp's own count) and puts it in the stream's final chunk. A stream that ends without it
(a provider that sends none), that the adapter's death cuts, or that the caller leaves, is billed
from counted tokens: the input estimated from the request, the output from the text the stream
carried so far (core/tokens.py), with `usage_estimated` set on the attempt.

A caller who leaves cancels the wait for the adapter's next message, not the read itself
(`AdapterStream`): the router reads on for a while (`late_usage_s`), and a usage that arrives then
is published as a `tierlift.attempt.usage` report that replaces the estimate in the ledger."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import grpc

from tierlift.core import money
from tierlift.core.catalog import Catalog
from tierlift.core.logging import get_logger
from tierlift.core.tokens import estimate_tokens
from tierlift.router import _events as events
from tierlift.v1 import adapter_pb2, common_pb2, events_pb2, router_pb2

log = get_logger(__name__)


def reported(usage: common_pb2.Usage) -> bool:
    """Whether a stream's usage came from its provider: a provider that sends none leaves it 0."""
    return usage.input_tokens > 0 or usage.output_tokens > 0


def prompt_text(request: router_pb2.CompleteRequest) -> str:
    """The request's text as a provider reads it: each message's text, its tool calls and the
    tools offered (images are not counted: an estimate of text only)."""
    parts = [m.content or "\n".join(p.text for p in m.parts if p.text) for m in request.messages]
    parts += [f"{c.name} {c.arguments}" for m in request.messages for c in m.tool_calls]
    parts += [f"{t.name} {t.description} {t.parameters}" for t in request.params.tools]
    return "\n".join(p for p in parts if p)


def estimated_usage(request: router_pb2.CompleteRequest, streamed: str) -> common_pb2.Usage:
    """Input tokens estimated from the request, output tokens from the text streamed (0 if none)."""
    return common_pb2.Usage(
        input_tokens=estimate_tokens(prompt_text(request)),
        output_tokens=estimate_tokens(streamed) if streamed else 0,
    )


def bill_estimate(
    attempt: router_pb2.Attempt, request: router_pb2.CompleteRequest, streamed: str, catalog: Catalog
) -> None:
    """Bill `attempt` from counted tokens (`estimated_usage`) at its model's prices."""
    model = catalog.get(attempt.model)
    assert model is not None  # the plan only holds catalog models
    attempt.usage.CopyFrom(estimated_usage(request, streamed))
    attempt.cost_usd = money.to_wire(model.usage_cost(attempt.usage).total)
    attempt.usage_estimated = True


async def report_late_usage(
    publisher: events.Publisher,
    catalog: Catalog,
    finished: events_pb2.AttemptFinished,
    stream: AdapterStream,
    within_s: float,
) -> None:
    """Read a cut stream on (at most `within_s`) for the provider's usage; publish it when it
    comes, priced, for the ledger to put in place of the estimate `finished` was billed at."""
    summary = await stream.late_summary(within_s)
    if summary is None or not reported(summary.usage):
        return
    model = catalog.get(finished.attempt.model)
    assert model is not None
    cost = money.to_wire(model.usage_cost(summary.usage).total)
    try:
        await events.usage_reported(publisher, finished, summary.usage, cost)
    except Exception:
        log.exception("late_usage_not_recorded", request_id=finished.request_id)
        return
    log.info("late_usage_reported", request_id=finished.request_id, estimated_usd=finished.attempt.cost_usd,
             reported_usd=cost)  # fmt: skip


def summary_text(summary: adapter_pb2.GenerateResponse) -> str:
    """What a finished answer's output tokens are made of: its text and its tool calls."""
    return "".join([summary.text, *(f"{c.name} {c.arguments}" for c in summary.tool_calls)])


class AdapterStream:
    """An adapter's stream read one message at a time, each read in a task of its own: a caller
    who leaves cancels the wait for the next message, not the read, so the stream can be read on
    afterwards (`late_summary`). `call` is the stub's answer: grpc.aio's call, or the async
    generator a client interceptor makes of it. `text` is every text piece that came."""

    def __init__(self, call: AsyncIterable[adapter_pb2.GenerateChunk]) -> None:
        self.call = call
        self._messages = call.__aiter__()
        self.text: list[str] = []
        self._pending: asyncio.Task[adapter_pb2.GenerateChunk | None] | None = None

    async def next(self) -> adapter_pb2.GenerateChunk | None:
        """The next chunk; None at the stream's end. An adapter's failure raises AioRpcError."""
        if self._pending is None:
            self._pending = asyncio.create_task(_read(self._messages))
            self._pending.add_done_callback(_retrieved)
        chunk = await asyncio.shield(self._pending)
        self._pending = None
        if chunk is not None and not chunk.final:
            self.text.append(chunk.text)
        return chunk

    async def late_summary(self, within_s: float) -> adapter_pb2.GenerateResponse | None:
        """Read on, for at most `within_s`, to the final chunk; its summary, or None when it does
        not come in time (or the stream fails). The stream is closed either way."""
        try:
            async with asyncio.timeout(within_s):
                while (chunk := await self.next()) is not None:
                    if chunk.final:
                        return chunk.summary
        except (TimeoutError, grpc.aio.AioRpcError) as exc:
            log.info("late_usage_not_received", error=repr(exc)[:200])
        finally:
            await self.close()
        return None

    async def close(self) -> None:
        """Stop reading: the read in flight is cancelled (which cancels the call), the rest closed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        cancel = getattr(self.call, "cancel", None)
        if cancel is not None:
            cancel()
        aclose = getattr(self._messages, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


async def _read(messages: AsyncIterator[adapter_pb2.GenerateChunk]) -> adapter_pb2.GenerateChunk | None:
    try:
        return await anext(messages)
    except StopAsyncIteration:
        return None


def _retrieved(read: asyncio.Task[Any]) -> None:
    """A read nobody waits for any more (the stream was given up) fails quietly."""
    if not read.cancelled():
        read.exception()
