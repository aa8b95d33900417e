"""The ModelAdapter gRPC servicer: validates the request, calls the backend, maps its errors
to gRPC status codes. Backend-agnostic."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
from opentelemetry import trace

from tierlift.adapters import _metrics
from tierlift.adapters._backend import Backend, BackendError, text_of
from tierlift.core import adapter_calls, limits, pricing
from tierlift.core.ids import shown
from tierlift.core.logging import get_logger
from tierlift.core.scrub import scrub
from tierlift.v1 import adapter_pb2, adapter_pb2_grpc

log = get_logger(__name__)
tracer = trace.get_tracer("tierlift.adapters")


def scrubbed(exc: BackendError, request: adapter_pb2.GenerateRequest) -> BackendError:
    """The error with no prompt text, number or credential in what the caller, the log and the
    span see of it (core/scrub.py)."""
    return scrubbed_texts(exc, [text_of(m) for m in request.messages])


def scrubbed_texts(exc: BackendError, prompt: list[str]) -> BackendError:
    return BackendError(exc.code, scrub(exc.message, prompt), scrub(exc.detail, prompt))


class AdapterServicer(adapter_pb2_grpc.ModelAdapterServicer):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._description = backend.describe()

    async def _check(self, request: adapter_pb2.GenerateRequest, context: grpc.aio.ServicerContext) -> None:
        if request.model not in self._description.models:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"model: {shown(request.model)} is not served by adapter {self._description.adapter!r} "
                f"(serves {list(self._description.models)})",
            )
        if not request.messages:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "messages: must not be empty")
        if problem := limits.check_params(request.params) or limits.check_messages(request.messages):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, ": ".join(problem))

    async def Generate(
        self, request: adapter_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.GenerateResponse:
        await adapter_calls.take(context)  # from here a failure without our status may have been billed
        await self._check(request, context)
        started = time.perf_counter()
        try:
            with self._provider_span(request) as span:
                try:
                    reply = await self.backend.generate(request)
                except BackendError as exc:
                    raise scrubbed(exc, request) from None
                span.set_attributes(pricing.span_attributes(reply.usage))
                span.set_attribute("gen_ai.response.finish_reasons", [reply.finish_reason])
                span.set_attribute("gen_ai.response.model", request.model)
                self._measure(request, started)
                return reply
        except BackendError as exc:
            self._measure(request, started, exc.code)
            log.warning("generate_failed", model=request.model, code=exc.code.name, error=exc.detail)
            await context.abort(exc.code, exc.message)
            raise  # unreachable: abort raises

    async def GenerateStream(
        self, request: adapter_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        await adapter_calls.take(context)
        await self._check(request, context)
        started, first = time.perf_counter(), True
        try:
            try:
                async for chunk in self.backend.stream(request):
                    if first:
                        first = False
                        labels = _metrics.attributes(self.backend.family, request.model)
                        _metrics.time_to_first_chunk.record(time.perf_counter() - started, labels)
                    yield chunk
                self._measure(request, started)
            except BackendError as exc:
                raise scrubbed(exc, request) from None
        except BackendError as exc:
            self._measure(request, started, exc.code)
            log.warning("stream_failed", model=request.model, code=exc.code.name, error=exc.detail)
            await context.abort(exc.code, exc.message)

    def _measure(
        self, request: adapter_pb2.GenerateRequest, started: float, error: grpc.StatusCode | None = None
    ) -> None:
        labels = _metrics.attributes(self.backend.family, request.model, error)
        _metrics.operation_duration.record(time.perf_counter() - started, labels)

    @contextlib.contextmanager
    def _provider_span(self, request: adapter_pb2.GenerateRequest) -> Iterator[trace.Span]:
        """The call to the model backend (GenAI semantic conventions: a CLIENT span)."""
        with tracer.start_as_current_span(f"chat {request.model}", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", self.backend.family)
            span.set_attribute("gen_ai.request.model", request.model)
            span.set_attribute("gen_ai.request.max_tokens", request.params.max_tokens)
            yield span

    async def Describe(
        self, request: adapter_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.AdapterDescription:
        return self._description

    async def Embed(
        self, request: adapter_pb2.EmbeddingsRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.EmbeddingsResponse:
        """Embeddings, where the backend makes them (`embed`); UNIMPLEMENTED where it has none."""
        await adapter_calls.take(context)
        embed: Any = getattr(self.backend, "embed", None)
        if request.model not in self._description.models:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"model: {shown(request.model)} is not served here")
        if problem := limits.check_inputs(request.inputs):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, ": ".join(problem))
        if embed is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, f"adapter {self._description.adapter!r} makes no embeddings"
            )
        try:
            try:
                reply: adapter_pb2.EmbeddingsResponse = await embed(request)
                return reply
            except BackendError as exc:
                raise scrubbed_texts(exc, list(request.inputs)) from None
        except BackendError as exc:
            log.warning("embed_failed", model=request.model, code=exc.code.name, error=exc.detail)
            await context.abort(exc.code, exc.message)
            raise
