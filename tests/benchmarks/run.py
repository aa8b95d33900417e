"""`make bench`: measures on the real embedded stack and writes JSON results with the command,
commit and machine that produced them. Speed is measured here, never asserted in tests.

    local_model.json      one local-model answer end to end (router -> classifier -> llama.cpp ->
                          events), sequential, and the classifier alone
    router_overhead.json  router + classifier + adapter hop + event publish with an upstream
                          that answers at once (a local OpenAI wire server), at 1, 16 and 128
                          concurrent clients
                          (router_overhead_combined.json: the same with TIERLIFT_TOPOLOGY=combined)

    ledger.json           ledger ingest rate (events/s) and report query latency over 1M stored
                          attempts, on SQLite and PostgreSQL
    console.json          the web console's pages (p50/p95/max) over 1M stored attempts on
                          PostgreSQL, the console alone reading the ledger and assessor over gRPC
    detectors.json        the classifier's pattern work (detectors, prompt form, address search)
                          at 4K, 32K and 128K characters of five kinds of text
    auth.json             what authenticating a call adds (Authenticate.admit, 10,000 keys)
    gateway.json          what the OpenAI-compatible edge adds over calling the router directly
    tools.json            what a tool (a call the upstream makes, checked against its schema) adds
                          to a request through the edge
    cpu_profile.json      CPU per routed request by process over the OpenAI-compatible edge at 16
                          clients, with py-spy flame graphs under results/flames/
    shadow.json           live latency and throughput of a workload shadowing 5% of its requests,
                          against one that shadows none, in alternating rounds
    floor.json            the transport alone (a bare gRPC hop, HTTP hop, JetStream event), and
                          the least CPU a routed request of this design can cost on this machine
    classifier_load.json  the classifier alone with new ~230-token prompts at 1 and 16 concurrent
                          calls: latency, CPU per prompt, resident memory
    topology.json         the same requests on the microservices and the combined topology, both
                          up at once, alternating rounds: latency, throughput, CPU per request

BENCH=local, overhead, ledger, console, detectors, auth, gateway, tools, shadow, profile, floor, classifier
or topology runs one.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

from tests.stack_keys import app_key
from tierlift.devstack import Stack
from tierlift.results import write_result
from tierlift.v1 import classifier_pb2, classifier_pb2_grpc, common_pb2, router_pb2, router_pb2_grpc

RESULTS = Path(__file__).parent / "results"
LABELLED = Path(__file__).parent.parent.parent / "data" / "classifier" / "labelled.jsonl"
QUESTIONS = [
    "What is the capital of France?",
    "What is 12 + 30?",
    "Who wrote Romeo and Juliet?",
    "What colour is the sky on a clear day?",
    "How many legs does a spider have?",
]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(values_ms),
        "p50_ms": round(statistics.median(values_ms), 2),
        "p95_ms": round(_percentile(values_ms, 0.95), 2),
        "p99_ms": round(_percentile(values_ms, 0.99), 2),
        "mean_ms": round(statistics.fmean(values_ms), 2),
    }


def bench_local_model(stack: Stack, rounds: int) -> dict[str, object]:
    end_to_end, adapter, output_tokens, decode_s = [], [], 0, 0.0
    with stack.channel("router", app_key(stack, "bench")) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        for i in range(rounds):
            request = router_pb2.CompleteRequest(
                tenant="bench",
                workload="local-latency",
                messages=[common_pb2.Message(role="user", content=QUESTIONS[i % len(QUESTIONS)])],
                params=common_pb2.GenerationParams(max_tokens=32),
            )
            started = time.perf_counter()
            reply = router.Complete(request, timeout=120)
            end_to_end.append((time.perf_counter() - started) * 1000)
            attempt = reply.attempts[-1]
            adapter.append(attempt.latency_ms)
            output_tokens += attempt.usage.output_tokens
            decode_s += attempt.latency_ms / 1000
    return {
        "end_to_end": _summary(end_to_end),
        "adapter_generate": _summary(adapter),
        "output_tokens_per_s_incl_prefill": round(output_tokens / decode_s, 1),
        "max_tokens": 32,
    }


def bench_classifier(stack: Stack, rounds: int) -> dict[str, object]:
    """Round trips over gRPC: new prompts (embedding, entities, detectors) and repeated ones
    (the embedding cache answers). Prompts are the held-out labelled rows, of every kind."""
    rows = [json.loads(line) for line in LABELLED.read_text().splitlines()]
    prompts = [r["text"] for r in rows if r["split"] == "test"][:rounds]
    timings: dict[str, list[float]] = {"new_prompt": [], "repeated_prompt": []}
    with stack.channel("classifier") as channel:
        classifier = classifier_pb2_grpc.ClassifierStub(channel)
        for kind in timings:
            for text in prompts:
                request = classifier_pb2.ClassifyRequest(messages=[common_pb2.Message(role="user", content=text)])
                started = time.perf_counter()
                classifier.Classify(request, timeout=10)
                timings[kind].append((time.perf_counter() - started) * 1000)
    return {f"classify_round_trip_{kind}": _summary(values) for kind, values in timings.items()}


async def _overhead_level(
    stack: Stack, clients: int, total: int, fresh_prompts: bool, workload: str = "overhead"
) -> dict[str, object]:
    """`fresh_prompts`: every request is new to the classifier (MiniLM, spaCy and detectors run);
    otherwise five questions repeat and the classifier answers from its cache."""
    timings: list[float] = []
    errors: dict[str, int] = {}
    remaining = iter(range(total))
    async with stack.aio_channel("router", app_key(stack, "bench")) as channel:
        router = router_pb2_grpc.RouterStub(channel)

        async def client() -> None:
            for i in remaining:
                text = QUESTIONS[i % len(QUESTIONS)] + (f" (#{clients}-{i})" if fresh_prompts else "")
                request = router_pb2.CompleteRequest(
                    tenant="bench",
                    workload=workload,
                    messages=[common_pb2.Message(role="user", content=text)],
                    params=common_pb2.GenerationParams(max_tokens=8),
                )
                started = time.perf_counter()
                try:
                    await router.Complete(request, timeout=60)
                except grpc.aio.AioRpcError as exc:
                    key = f"{exc.code().name}: {exc.details()}"
                    errors[key] = errors.get(key, 0) + 1
                    continue
                timings.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": total,
        **_summary(timings),
        "answered_per_s": round(len(timings) / elapsed, 1),
        "errors": errors,
    }


def bench_router_overhead() -> dict[str, object]:
    from tests.wire.server import WireServer
    from tests.wire.stack import start_provider_stack, wire_model

    upstream = WireServer()
    upstream.start()
    with tempfile.TemporaryDirectory() as state:
        stack = start_provider_stack(
            Path(state),
            [wire_model("wire-open", "HOSTED_OPEN", upstream.endpoint, "0.50")],
            TIERLIFT_LOG_LEVEL="warning",
        )
        try:
            asyncio.run(_overhead_level(stack, 4, 100, fresh_prompts=False))  # warm-up
            levels = {
                kind: [
                    asyncio.run(_overhead_level(stack, c, n, fresh_prompts=kind == "new_prompts"))
                    for c, n in ((1, 300), (16, 800), (128, 1280))
                ]
                for kind in ("repeated_prompts", "new_prompts")
            }
        finally:
            stack.stop()
            upstream.stop()
    return {
        "what": "Router.Complete round trip: router + classifier + adapter (aiohttp to the provider) + JetStream "
        "publish of the attempt.started (the call written ahead, with the plan) and request.settled events; "
        "upstream is a local OpenAI wire server "
        "answering at once. repeated_prompts: five questions, classified from the cache; new_prompts: each request "
        "new to the classifier (static embeddings, detectors, prompt form; spaCy near an address), one classifier "
        "process; errors are counted, not hidden. "
        "Client, services, nats-server and upstream share this machine's cores.",
        "levels": levels,
    }


def _write(name: str, result: dict[str, object], command: str = "make bench") -> None:
    write_result(RESULTS / name, command, result)


def main() -> int:
    which = os.environ.get("BENCH", "all")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if which in ("all", "local"):
        _write("local_model.json", bench_local(int(os.environ.get("BENCH_ROUNDS", "30"))))
    if which in ("all", "overhead"):  # in the test stacks' topology (TIERLIFT_TOPOLOGY), each its own file
        topology = os.environ.get("TIERLIFT_TOPOLOGY", "microservices")
        name = "router_overhead.json" if topology == "microservices" else f"router_overhead_{topology}.json"
        command = "make bench" if topology == "microservices" else f"TIERLIFT_TOPOLOGY={topology} make bench"
        _write(name, bench_router_overhead() | {"topology": topology}, command)
    if which in ("all", "ledger"):
        from tests.benchmarks.ledger import bench_ledger

        _write("ledger.json", bench_ledger())
    if which in ("all", "console"):
        from tests.benchmarks.console import bench_console

        _write("console.json", bench_console())
    if which in ("all", "gateway"):
        from tests.benchmarks.gateway import bench_gateway

        _write("gateway.json", bench_gateway())
    if which in ("all", "tools"):
        from tests.benchmarks.tools import bench_tools

        _write("tools.json", bench_tools())
    if which in ("all", "auth"):
        from tests.benchmarks.auth import bench_auth

        _write("auth.json", bench_auth())
    if which in ("all", "shadow"):
        from tests.benchmarks.shadow import bench_shadow

        _write("shadow.json", bench_shadow())
    if which in ("all", "detectors"):
        from tests.benchmarks.detectors import bench_detectors

        _write("detectors.json", bench_detectors())
    if which in ("all", "classifier"):
        from tests.benchmarks.classifier import bench_classifier_load

        _write("classifier_load.json", bench_classifier_load())
    if which in ("all", "profile"):
        from tests.benchmarks.cpu_profile import bench_cpu_profile

        _write("cpu_profile.json", bench_cpu_profile())
    if which in ("all", "floor"):
        from tests.benchmarks.floor import bench_floor

        _write("floor.json", bench_floor())
    if which in ("all", "topology"):
        from tests.benchmarks.topology import bench_topology

        _write("topology.json", bench_topology())
    return 0


def bench_local(rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as state:
        stack = Stack(Path(state))
        stack.start()
        try:
            bench_local_model(stack, 3)  # warm-up: prompt cache, page faults
            return {
                "local_model": bench_local_model(stack, rounds),
                "classifier": bench_classifier(stack, rounds * 20),
            }
        finally:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
