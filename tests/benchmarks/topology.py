"""`BENCH=topology make bench` -> topology.json: the same requests on the two topologies, both
stacks up at once and measured in alternating rounds, upstream one local OpenAI wire server that
answers at once: `microservices` (gateway, router, classifier, adapter each a process, gRPC
between them) and `combined` (`tierlift serve`: those four in one process, direct calls). Per
topology: p50 over the OpenAI edge with one client and over gRPC (Router.Complete) with one
client; at 16 clients over the edge, throughput, p50/p99 and CPU per request, of the request
path's processes (gateway, router, classifier, adapter, or the combined one) and of all the
stack's (with ledger, assessor and nats-server). Repeated prompts: the classifier answers from
its cache, so the hops, not the classification, dominate."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.benchmarks.cpu_profile import _cpu_s
from tests.stack_keys import app_key
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, router_pb2, router_pb2_grpc

QUESTIONS = ["What is the capital of France?", "What is 12 + 30?", "Who wrote Romeo and Juliet?"]
TOPOLOGIES = ("microservices", "combined")
_AT_16 = ("p50_ms", "p99_ms", "answered_per_s")


def _cpu(stack: Stack) -> tuple[float, float]:
    """CPU seconds so far: the request path's processes, and all of the stack's."""
    path = sum(_cpu_s(p.pid) for n, p in stack.procs.items() if n not in ("ledger", "assessor", "nats"))
    return path, sum(_cpu_s(p.pid) for p in stack.procs.values())


async def _edge(stack: Stack, key: str, clients: int, total: int) -> dict[str, Any]:
    timings: list[float] = []
    errors = 0
    remaining = iter(range(total))
    headers = {"Authorization": f"Bearer {key}", "x-tierlift-workload": "topology"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def client() -> None:
            nonlocal errors
            for i in remaining:
                body = {"model": "tierlift/auto", "messages": [{"role": "user", "content": QUESTIONS[i % 3]}],
                        "max_tokens": 8}  # fmt: skip
                started = time.perf_counter()
                async with http.post(f"{stack.openai_base_url}/chat/completions", json=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        continue
                timings.append((time.perf_counter() - started) * 1000)

        cpu_before, started = _cpu(stack), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed, cpu_after = time.perf_counter() - started, _cpu(stack)
    answered = max(len(timings), 1)
    return {
        "clients": clients,
        "requests": total,
        "p50_ms": round(statistics.median(timings), 3),
        "p99_ms": round(sorted(timings)[int(len(timings) * 0.99) - 1], 3),
        "answered_per_s": round(len(timings) / elapsed, 1),
        "cpu_ms_per_request_path": round((cpu_after[0] - cpu_before[0]) * 1000 / answered, 3),
        "cpu_ms_per_request_all": round((cpu_after[1] - cpu_before[1]) * 1000 / answered, 3),
        "errors": errors,
    }


async def _grpc_p50(stack: Stack, key: str, total: int) -> float:
    timings: list[float] = []
    async with stack.aio_channel("router", key) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        for i in range(total):
            request = router_pb2.CompleteRequest(
                tenant="bench", workload="topology", params=common_pb2.GenerationParams(max_tokens=8),
                messages=[common_pb2.Message(role="user", content=QUESTIONS[i % 3])],
            )  # fmt: skip
            started = time.perf_counter()
            await router.Complete(request, timeout=30)
            timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 3)


def _round(stack: Stack, key: str, sequential: int, concurrent: int) -> dict[str, Any]:
    return {
        "edge_1_client": asyncio.run(_edge(stack, key, 1, sequential)),
        "grpc_1_client_p50_ms": asyncio.run(_grpc_p50(stack, key, sequential)),
        "edge_16_clients": asyncio.run(_edge(stack, key, 16, concurrent)),
    }


def bench_topology(rounds: int = 2, sequential: int = 200, concurrent: int = 800) -> dict[str, object]:
    from tests.wire.server import WireServer
    from tests.wire.stack import start_provider_stack, wire_model

    upstream = WireServer()
    upstream.start()
    stacks: dict[str, Stack] = {}
    measured: dict[str, list[dict[str, Any]]] = {t: [] for t in TOPOLOGIES}
    with tempfile.TemporaryDirectory() as state:
        try:
            for topology in TOPOLOGIES:
                (Path(state) / topology).mkdir()
                models = [wire_model("wire-open", "HOSTED_OPEN", upstream.endpoint, "0.50")]
                stacks[topology] = start_provider_stack(
                    Path(state) / topology, models, topology=topology, TIERLIFT_LOG_LEVEL="warning"
                )
            keys = {t: app_key(s, "bench") for t, s in stacks.items()}
            for topology, stack in stacks.items():  # warm-up
                asyncio.run(_edge(stack, keys[topology], 4, 100))
            for _ in range(rounds):
                for topology, stack in stacks.items():
                    measured[topology].append(_round(stack, keys[topology], sequential, concurrent))
        finally:
            for stack in stacks.values():
                stack.stop()
            upstream.stop()
    return {"what": " ".join(__doc__.split()), "rounds": measured, "median_of_rounds": _medians(measured)}


def _medians(measured: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    def median(part: str, field: str, rounds: list[dict[str, Any]]) -> float:
        return statistics.median(r[part][field] if field else r[part] for r in rounds)

    out: dict[str, dict[str, float]] = {}
    for topology, rounds in measured.items():
        out[topology] = {
            "edge_1_client_p50_ms": median("edge_1_client", "p50_ms", rounds),
            "grpc_1_client_p50_ms": median("grpc_1_client_p50_ms", "", rounds),
            **{
                f"edge_16_clients_{f}": median("edge_16_clients", f, rounds)
                for f in ("p50_ms", "p99_ms", "answered_per_s")
            },
            **{f: median("edge_16_clients", f, rounds) for f in ("cpu_ms_per_request_path", "cpu_ms_per_request_all")},
        }
    return out
