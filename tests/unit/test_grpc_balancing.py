"""A service's calls spread over every replica its callee's name resolves to (round_robin on
the client channel), which the chart's headless Services give each replica an address for."""

from __future__ import annotations

import grpc

from tierlift.core.grpc_server import client_channel

METHOD = "/tierlift.test.Echo/Call"


async def _replica(calls: list[int], index: int) -> tuple[grpc.aio.Server, int]:
    async def call(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        calls[index] += 1
        return request

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(call)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("tierlift.test.Echo", {"Call": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def test_calls_spread_over_every_replica_of_the_callee() -> None:
    calls = [0, 0]
    (first, first_port), (second, second_port) = [await _replica(calls, i) for i in range(2)]
    # a name that resolves to both replicas, as a headless Service's name does in the cluster
    channel = client_channel(f"ipv4:127.0.0.1:{first_port},127.0.0.1:{second_port}", key="k")
    try:
        echo = channel.unary_unary(METHOD)
        for i in range(40):
            assert await echo(str(i).encode(), timeout=5) == str(i).encode()
    finally:
        await channel.close()
        await first.stop(None)
        await second.stop(None)
    assert sum(calls) == 40 and min(calls) >= 10, calls  # not all on the first one connected
