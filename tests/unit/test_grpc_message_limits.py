"""A request as large as the edge accepts travels between the services: every server and channel
takes messages of twice the gateway's body limit (the classifier reads a request's messages and
its other provider-bound strings side by side). At gRPC's default 4 MiB, a 5 MiB body was refused
as RESOURCE_EXHAUSTED, which the edge answers as a retryable 429."""

from __future__ import annotations

import grpc

from tierlift.core.grpc_server import CHANNEL_OPTIONS, SERVER_OPTIONS
from tierlift.gateway._app import MAX_BODY

METHOD = "/test.Echo/Size"


async def _size(request: bytes, _context: object) -> bytes:
    return str(len(request)).encode()


async def test_a_message_of_twice_the_edges_body_limit_goes_through_a_server_and_a_channel() -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handler = grpc.method_handlers_generic_handler("test.Echo", {"Size": grpc.unary_unary_rpc_method_handler(_size)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
            size = channel.unary_unary(METHOD)
            assert await size(b"x" * (2 * MAX_BODY), timeout=30) == str(2 * MAX_BODY).encode()
    finally:
        await server.stop(None)
