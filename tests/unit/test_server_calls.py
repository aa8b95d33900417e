"""ServerCalls, the one interceptor every served call goes through (core/grpc_server.py)."""

from typing import Any

import grpc
import pytest

from tierlift.core.grpc_server import ServerCalls
from tierlift.core.identity import Authenticate, KeyBook


class _Aborted(Exception):
    pass


class _Context:
    """A call with no credential."""

    def __init__(self) -> None:
        self.aborted: grpc.StatusCode | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def code(self) -> grpc.StatusCode | None:
        return self.aborted

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = code
        raise _Aborted(details)


def _calls() -> ServerCalls:
    return ServerCalls(Authenticate(KeyBook(), {"*": frozenset({"admin"})}))


async def _intercepted(handler: Any, method: str) -> Any:
    async def continuation(_details: Any) -> Any:
        return handler

    return await _calls().intercept_service(continuation, _Details(method))  # type: ignore[arg-type]


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def test_a_request_streaming_method_is_refused_not_served_unchecked() -> None:
    """No Tierlift method takes a stream of requests; one added without being admitted by
    ServerCalls must not reach its handler with an unauthenticated caller."""
    served: list[str] = []

    async def sink(requests: Any, _context: Any) -> bytes:
        served.append("called")
        return b""

    original = grpc.stream_unary_rpc_method_handler(sink)
    handler = await _intercepted(original, "/tierlift.v1.Ledger/Upload")
    assert handler is not original and handler.request_streaming
    context = _Context()
    with pytest.raises(_Aborted, match="request streams are not admitted"):
        await handler.stream_unary(iter(()), context)
    assert context.aborted == grpc.StatusCode.UNIMPLEMENTED and served == []


async def test_a_stream_written_with_context_write_admits_its_caller_first() -> None:
    """A server stream may be a coroutine that writes with context.write rather than an async
    generator; it goes through the same caller check."""
    served: list[str] = []

    async def writer(_request: Any, _context: Any) -> None:
        served.append("called")

    handler = await _intercepted(grpc.unary_stream_rpc_method_handler(writer), "/tierlift.v1.Router/CompleteStream")
    context = _Context()
    with pytest.raises(_Aborted, match="API key"):
        await handler.unary_stream(b"", context)
    assert context.aborted == grpc.StatusCode.UNAUTHENTICATED and served == []


async def test_a_stream_the_server_stops_reading_ends_its_span_without_a_context_error(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gRPC stops reading a finished stream at its last message; the generator is then closed
    in another task (the event loop's finaliser). Its span must not be detached there: the
    context it attached belongs to the serving task ("Failed to detach context")."""
    import asyncio
    import logging

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tierlift.core import grpc_server

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(grpc_server, "_tracer", provider.get_tracer("test"))  # no global provider set
    closed: list[str] = []
    seen_spans: list[Any] = []

    async def chunks(_request: Any, _context: Any) -> Any:
        try:
            seen_spans.append(trace.get_current_span())
            yield "text"
            seen_spans.append(trace.get_current_span())
            yield "final"
        finally:
            closed.append("inner")

    async def continuation(_details: Any) -> Any:
        return grpc.unary_stream_rpc_method_handler(chunks)

    handler = await ServerCalls().intercept_service(continuation, _Details("/tierlift.v1.Router/CompleteStream"))  # type: ignore[arg-type]
    stream = handler.unary_stream(b"", _Context())
    caplog.set_level(logging.ERROR)
    assert [await stream.__anext__(), await stream.__anext__()] == ["text", "final"]
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing of the call's is left attached here
    await asyncio.create_task(stream.aclose())  # closed from another task's context
    assert closed == ["inner"]
    (span,) = exporter.get_finished_spans()
    assert span.name == "/tierlift.v1.Router/CompleteStream" and span.kind == trace.SpanKind.SERVER
    assert {s.get_span_context().span_id for s in seen_spans} == {span.context.span_id}  # current at each step
    assert not [r for r in caplog.records if "detach" in r.getMessage()]
