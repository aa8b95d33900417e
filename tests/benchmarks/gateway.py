"""What the OpenAI-compatible edge adds (`BENCH=gateway make bench` -> gateway.json): one client,
the same repeated question, alternately straight to Router.Complete over gRPC and through the
gateway over HTTP (aiohttp client, keep-alive), upstream a local OpenAI wire server answering
at once. The difference of the medians is the edge's cost."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.stack_keys import app_key
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, router_pb2, router_pb2_grpc

QUESTION = "What is the capital of France?"


async def _measure(stack: Stack, rounds: int) -> dict[str, float]:
    key = app_key(stack, "bench")
    direct: list[float] = []
    edge: list[float] = []
    request = router_pb2.CompleteRequest(tenant="bench", workload="edge",
                                         messages=[common_pb2.Message(role="user", content=QUESTION)])  # fmt: skip
    body = {"model": "tierlift/auto", "messages": [{"role": "user", "content": QUESTION}]}
    headers = {"Authorization": f"Bearer {key}", "x-tierlift-workload": "edge"}
    async with stack.aio_channel("router", key) as channel, aiohttp.ClientSession() as http:
        router = router_pb2_grpc.RouterStub(channel)
        for i in range(rounds + 20):  # the first 20 warm both paths
            started = time.perf_counter()
            await router.Complete(request, timeout=30)
            middle = time.perf_counter()
            async with http.post(f"{stack.openai_base_url}/chat/completions", json=body, headers=headers) as r:
                assert r.status == 200, await r.text()
                await r.read()
            if i >= 20:
                direct.append((middle - started) * 1000)
                edge.append((time.perf_counter() - middle) * 1000)
    return {
        "router_p50_ms": round(statistics.median(direct), 3),
        "gateway_p50_ms": round(statistics.median(edge), 3),
        "added_p50_ms": round(statistics.median(edge) - statistics.median(direct), 3),
        "rounds": rounds,
    }


def bench_gateway(rounds: int = 300) -> dict[str, object]:
    from tests.wire.server import WireServer
    from tests.wire.stack import start_provider_stack, wire_model

    upstream = WireServer()
    upstream.start()
    with tempfile.TemporaryDirectory() as state:
        stack = start_provider_stack(Path(state), [wire_model("wire-open", "HOSTED_OPEN", upstream.endpoint, "0.50")],
                                     TIERLIFT_LOG_LEVEL="warning")  # fmt: skip
        try:
            result = asyncio.run(_measure(stack, rounds))
        finally:
            stack.stop()
            upstream.stop()
    return {"what": __doc__.split("\n\n")[0].replace("\n", " "), **result}
