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
