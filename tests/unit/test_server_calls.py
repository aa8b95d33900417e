"""ServerCalls, the one interceptor every served call goes through (core/grpc_server.py)."""

from typing import Any

import grpc
import pytest

from tierlift.core.grpc_server import ServerCalls
from tierlift.core.identity import Authenticate, KeyBook


class _Aborted(Exception):
    pass


class _Context:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        raise _Aborted(details)


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

    async def continuation(_details: Any) -> Any:
        return original

    calls = ServerCalls(Authenticate(KeyBook(), {"*": frozenset({"admin"})}))
    handler = await calls.intercept_service(continuation, _Details("/tierlift.v1.Ledger/Upload"))  # type: ignore[arg-type]
    assert handler is not original and handler.request_streaming
    context = _Context()
    with pytest.raises(_Aborted, match="request streams are not admitted"):
        await handler.stream_unary(iter(()), context)
    assert context.code == grpc.StatusCode.UNIMPLEMENTED and served == []
