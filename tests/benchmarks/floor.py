"""`BENCH=floor`: what the transport alone costs, with no Tierlift code on it. Each part runs
bare in its own processes, 16 concurrent callers, CPU read from /proc per process:

    grpc_hop    a grpc.aio unary call (uvloop) to a handler that answers at once
    http_hop    an aiohttp POST with a small JSON body to a handler that answers at once
    event       a JetStream publish awaited for its ack, and a durable pull consumer that
                fetches in batches and acks each message, as core/bus.py does (with its
                core/jetstream_pull.py, the one piece of the project's code here)
    edge        one caller, p50 latency: a gRPC call straight to a handler that answers after
                3 ms, against an aiohttp POST to a bare edge that makes that call (what an
                HTTP-to-gRPC edge adds at the least: the gateway issue asks for <= 0.5 ms)
    processes   the parts together in one process, as a service runs them: "router" serves a
                gRPC call by publishing an event (awaited), calling a gRPC handler and publishing
                another; "adapter" serves one by an aiohttp POST. Its CPU per served call, at 16
                callers and at one, is the least that service's process can spend on a request
                (more than its parts measured apart: each process wakes more often per call)

A routed request over the OpenAI-compatible edge makes three gRPC hops (gateway -> router ->
classifier, adapter; two for a prompt the router remembers), one HTTP hop in (gateway) and one
out (adapter -> provider), and publishes two events (attempt.started, request.settled); the floor counts the ledger
consuming one of them. Adding those up gives the least CPU per request this design can
cost on this machine with these libraries: a floor to set the performance issue's targets (and
our own code's share) against.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import aiohttp
import grpc
import uvloop
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.benchmarks.cpu_profile import _cpu_s
from tierlift.devstack import free_port, nats_server_binary, nats_server_env, wait_for_port

CALLERS = 16
PAYLOAD = b"x" * 300  # about an event's size, and a small request's
BODY = {"model": "tierlift/auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]}


class _Health(health_pb2_grpc.HealthServicer):
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def Check(self, request: health_pb2.HealthCheckRequest, context: object) -> health_pb2.HealthCheckResponse:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _serve_grpc(port: int, delay_s: float = 0.0) -> None:
    """A gRPC health server that answers at once, or after `delay_s` (the edge measure's stand-in
    for the router's own few milliseconds)."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(_Health(delay_s), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def _serve_edge(port: int, upstream: int) -> None:
    """A bare HTTP-to-gRPC edge: read the JSON body, make one call, answer JSON."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{upstream}")
    stub = health_pb2_grpc.HealthStub(channel)

    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=body["model"]))
        return web.json_response({"id": "x", "status": reply.status, "choices": [{"message": {"content": "Paris"}}]})

    await _serve_chat(port, answer)


class _RouterLike(health_pb2_grpc.HealthServicer):
    """The router's transport and nothing else: publish (awaited), call, publish (awaited)."""

    def __init__(self, stub: health_pb2_grpc.HealthStub, js: Any) -> None:
        self.stub, self.js, self.served = stub, js, 0

    async def Check(self, request: health_pb2.HealthCheckRequest, context: object) -> health_pb2.HealthCheckResponse:
        self.served += 1
        await self.js.publish("floor.event", PAYLOAD, headers={"Nats-Msg-Id": f"{id(self)}.{self.served}.routed"})
        await self.stub.Check(request)
        await self.js.publish("floor.event", PAYLOAD, headers={"Nats-Msg-Id": f"{id(self)}.{self.served}.settled"})
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class _AdapterLike(health_pb2_grpc.HealthServicer):
    """The adapter's transport and nothing else: one aiohttp POST per call served."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: aiohttp.ClientSession | None = None

    async def Check(self, request: health_pb2.HealthCheckRequest, context: object) -> health_pb2.HealthCheckResponse:
        self.session = self.session or aiohttp.ClientSession()
        async with self.session.post(self.url, json=BODY) as reply:
            await reply.read()
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _serve_process(kind: str, port: int, upstream: str, nats_url: str = "") -> None:
    server = grpc.aio.server()
    if kind == "router":
        import nats

        nc = await nats.connect(nats_url)
        stub = health_pb2_grpc.HealthStub(grpc.aio.insecure_channel(f"127.0.0.1:{upstream}"))
        health_pb2_grpc.add_HealthServicer_to_server(_RouterLike(stub, nc.jetstream()), server)
    else:
        health_pb2_grpc.add_HealthServicer_to_server(
            _AdapterLike(f"http://127.0.0.1:{upstream}/v1/chat/completions"), server
        )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def _serve_combined(port: int, upstream: int, nats_url: str) -> None:
    """The combined topology's request path as transport alone, in one process: the edge takes
    the caller's POST, publishes an event (awaited), POSTs to the provider, publishes another
    (awaited), answers."""
    import nats

    js = (await nats.connect(nats_url)).jetstream()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CALLERS))
    served = iter(range(10**9))

    async def answer(request: web.Request) -> web.Response:
        body, n = await request.json(), next(served)
        await js.publish("floor.event", PAYLOAD, headers={"Nats-Msg-Id": f"{n}.started"})
        async with session.post(f"http://127.0.0.1:{upstream}/v1/chat/completions", json=body) as reply:
            answered = await reply.json()
        await js.publish("floor.event", PAYLOAD, headers={"Nats-Msg-Id": f"{n}.settled"})
        return web.json_response(answered)

    await _serve_chat(port, answer)


async def _edge_rounds(upstream: int, edge: int, rounds: int) -> tuple[list[float], list[float]]:
    """Alternately straight to the gRPC handler and through the edge, one call at a time."""
    direct_ms, edged_ms = [], []
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{upstream}") as channel,
        aiohttp.ClientSession() as session,
    ):
        stub = health_pb2_grpc.HealthStub(channel)
        for i in range(rounds + 50):
            started = time.perf_counter()
            await stub.Check(health_pb2.HealthCheckRequest(service="tierlift/auto"))
            middle = time.perf_counter()
            async with session.post(f"http://127.0.0.1:{edge}/v1/chat/completions", json=BODY) as reply:
                await reply.read()
            if i >= 50:  # warm-up
                direct_ms.append((middle - started) * 1e3)
                edged_ms.append((time.perf_counter() - middle) * 1e3)
    return direct_ms, edged_ms


def _measure_edge(rounds: int = 600) -> dict[str, float]:
    upstream, edge = free_port(), free_port()
    servers = [_spawn("serve-slow-grpc", str(upstream))]
    try:
        wait_for_port(upstream, 20.0, servers[0], "grpc")
        servers.append(_spawn("serve-edge", str(edge), str(upstream)))
        wait_for_port(edge, 20.0, servers[1], "edge")
        direct, edged = uvloop.run(_edge_rounds(upstream, edge, rounds))
    finally:
        for server in servers:
            server.kill()
            server.wait()
    direct_p50, edged_p50 = statistics.median(direct), statistics.median(edged)
    return {"direct_p50_ms": round(direct_p50, 3), "through_edge_p50_ms": round(edged_p50, 3),
            "added_p50_ms": round(edged_p50 - direct_p50, 3), "rounds": rounds}  # fmt: skip


async def _serve_http(port: int) -> None:
    async def answer(request: web.Request) -> web.Response:
        await request.json()
        return web.json_response({"id": "x", "choices": [{"message": {"content": "Paris"}}]})

    await _serve_chat(port, answer)


async def _serve_chat(port: int, answer: Callable[[web.Request], Awaitable[web.Response]]) -> None:
    """Serves `answer` on POST /v1/chat/completions until killed."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def _consume(url: str, total: int) -> None:
    """Acks `total` messages, then prints the CPU it spent from its first message on."""
    import nats
    from nats.js import api

    from tierlift.core.jetstream_pull import PullConsumer

    nc = await nats.connect(url)
    # the services' own pull consumer: nats-py's PullSubscription.fetch costs ~23 µs more a message
    config = api.ConsumerConfig(durable_name="floor", ack_policy=api.AckPolicy.EXPLICIT, filter_subject="floor.>")
    js = nc.jetstream()
    await js.add_consumer("FLOOR", config)  # as the bootstrap makes one: a service only binds to it
    sub = await PullConsumer.bind(js, nc, "FLOOR", "floor")
    print("ready", flush=True)
    seen, started = 0, None
    while seen < total:
        msgs = await sub.fetch(256, wait_s=0.5)
        if not msgs:
            continue
        started = started if started is not None else time.process_time()
        for msg in msgs:
            await msg.ack()
        seen += len(msgs)
    print(time.process_time() - (started or 0.0), flush=True)
    await nc.drain()


async def _add_stream(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    await nc.jetstream().add_stream(name="FLOOR", subjects=["floor.>"])
    await nc.drain()


async def _calls(total: int, call: Callable[[], Awaitable[object]], callers: int = CALLERS) -> float:
    """Runs `total` calls of `call` from `callers` concurrent callers."""
    remaining = iter(range(total))

    async def caller() -> None:
        for _ in remaining:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return time.perf_counter() - started


async def _one_at_a_time_p50_ms(call: Callable[[], Awaitable[object]], rounds: int = 1000) -> float:
    """The round trip's p50 with one caller: the latency a request pays for each such step."""
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        took.append((time.perf_counter() - started) * 1e3)
    return round(statistics.median(took), 3)


async def _grpc_client(port: int, total: int) -> tuple[float, float]:
    """(CPU seconds for `total` calls from 16 callers, p50 ms of one caller's round trip)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub, request = health_pb2_grpc.HealthStub(channel), health_pb2.HealthCheckRequest(service="x" * 300)
        p50 = await _one_at_a_time_p50_ms(lambda: stub.Check(request))
        started = time.process_time()
        await _calls(total, lambda: stub.Check(request))
        return time.process_time() - started, p50


async def _http_client(port: int, total: int) -> tuple[float, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CALLERS)) as session:

        async def post() -> None:
            async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY) as reply:
                await reply.read()

        p50 = await _one_at_a_time_p50_ms(post)
        started = time.process_time()
        await _calls(total, post)
        return time.process_time() - started, p50


async def _publisher(url: str, total: int) -> tuple[float, float]:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    counter = iter(range(10**9))

    async def publish() -> None:
        n = next(counter)
        await js.publish("floor.event", PAYLOAD, headers={"Nats-Msg-Id": f"e{n}"})

    started = time.process_time()
    await _calls(total, publish)
    spent = time.process_time() - started
    p50 = await _one_at_a_time_p50_ms(publish)
    await nc.drain()
    return spent, p50


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.benchmarks.floor", *args])


def _per_call_us(seconds: float, calls: int) -> float:
    return round(seconds / calls * 1e6, 1)


def _measure_hop(kind: str, total: int) -> dict[str, float]:
    port = free_port()
    server = _spawn(f"serve-{kind}", str(port))
    try:
        wait_for_port(port, 20.0, server, kind)
        before = _cpu_s(server.pid)
        client, p50 = uvloop.run(_grpc_client(port, total) if kind == "grpc" else _http_client(port, total))
        served = _cpu_s(server.pid) - before
    finally:
        server.kill()
        server.wait()
    # the server's count includes the 1,000 one-at-a-time calls
    return {"client_us": _per_call_us(client, total), "server_us": _per_call_us(served, total + 1000),
            "one_caller_p50_ms": p50}  # fmt: skip


def _measure_events(total: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        nats = subprocess.Popen(
            [str(nats_server_binary()), "-js", "-sd", scratch, "-a", "127.0.0.1", "-p", str(port)],
            stderr=subprocess.DEVNULL,
            env=nats_server_env(),  # as the embedded stack runs it
        )
        url = f"nats://127.0.0.1:{port}"
        consumer = None
        try:
            wait_for_port(port, 10.0, nats, "nats-server")
            uvloop.run(_add_stream(url))
            consumer = subprocess.Popen(
                [sys.executable, "-m", "tests.benchmarks.floor", "consume", url, str(total + 1000)],
                stdout=subprocess.PIPE,
            )
            assert consumer.stdout is not None
            consumer.stdout.readline()  # "ready": subscribed
            nats_before = _cpu_s(nats.pid)
            publish, p50 = uvloop.run(_publisher(url, total))
            consumed = float(consumer.stdout.readline())
            nats_spent = _cpu_s(nats.pid) - nats_before
            consumer.wait(timeout=60)
        finally:
            for proc in (consumer, nats):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return {"publish_us": _per_call_us(publish, total), "nats_server_us": _per_call_us(nats_spent, total + 1000),
            "consume_us": _per_call_us(consumed, total + 1000), "one_publisher_p50_ms": p50}  # fmt: skip


class _CombinedRun(NamedTuple):
    direct_p50_ms: float
    through_p50_ms: float
    process_cpu_s: float  # the edge's process, over the CALLERS-caller calls
    nats_cpu_s: float


async def _combined_calls(upstream: int, edge: int, pids: tuple[int, int], rounds: int, total: int) -> _CombinedRun:
    """One caller alternately straight to the provider and through the edge (p50 ms of each), then
    `total` calls through the edge from CALLERS callers: the CPU seconds the edge's process and
    nats-server (`pids`) spent on them."""
    direct_ms, edged_ms = [], []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CALLERS)) as session:

        async def post(port: int) -> None:
            async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY) as reply:
                await reply.read()

        for i in range(rounds + 50):
            started = time.perf_counter()
            await post(upstream)
            middle = time.perf_counter()
            await post(edge)
            if i >= 50:  # warm-up
                direct_ms.append((middle - started) * 1e3)
                edged_ms.append((time.perf_counter() - middle) * 1e3)
        before = [_cpu_s(pid) for pid in pids]
        await _calls(total, lambda: post(edge))
        spent = [_cpu_s(pid) - b for pid, b in zip(pids, before, strict=True)]
    return _CombinedRun(statistics.median(direct_ms), statistics.median(edged_ms), *spent)


def _measure_combined(total: int, rounds: int = 1000) -> dict[str, float]:
    """The combined process's floor: one caller's added p50 over calling the provider directly,
    and its CPU per request at CALLERS callers (nats-server's apart)."""
    helpers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as scratch:
        try:
            upstream, nats_port, edge = free_port(), free_port(), free_port()
            helpers.append(_spawn("serve-http", str(upstream)))
            wait_for_port(upstream, 20.0, helpers[-1], "upstream")
            helpers.append(subprocess.Popen(
                [str(nats_server_binary()), "-js", "-sd", scratch, "-a", "127.0.0.1", "-p", str(nats_port)],
                stderr=subprocess.DEVNULL, env=nats_server_env(),
            ))  # fmt: skip
            nats_pid = helpers[-1].pid
            wait_for_port(nats_port, 10.0, helpers[-1], "nats-server")
            uvloop.run(_add_stream(f"nats://127.0.0.1:{nats_port}"))
            helpers.append(_spawn("serve-combined", str(edge), str(upstream), f"nats://127.0.0.1:{nats_port}"))
            wait_for_port(edge, 20.0, helpers[-1], "combined")
            run = uvloop.run(_combined_calls(upstream, edge, (helpers[-1].pid, nats_pid), rounds, total))
        finally:
            for helper in reversed(helpers):
                helper.kill()
                helper.wait()
    return {"direct_p50_ms": round(run.direct_p50_ms, 3), "through_p50_ms": round(run.through_p50_ms, 3),
            "one_client_added_p50_ms": round(run.through_p50_ms - run.direct_p50_ms, 3),
            f"process_{CALLERS}_callers_us": _per_call_us(run.process_cpu_s, total),
            f"nats_server_{CALLERS}_callers_us": _per_call_us(run.nats_cpu_s, total)}  # fmt: skip


async def _served_calls(port: int, total: int, callers: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub, request = health_pb2_grpc.HealthStub(channel), health_pb2.HealthCheckRequest(service="x" * 300)
        await _calls(total, lambda: stub.Check(request), callers)


def _measure_process(kind: str, total: int) -> dict[str, float]:
    """CPU per call served by a process doing `kind`'s transport, at CALLERS callers and at one."""
    helpers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as scratch:
        try:
            upstream = free_port()
            helpers.append(_spawn("serve-grpc" if kind == "router" else "serve-http", str(upstream)))
            wait_for_port(upstream, 20.0, helpers[-1], "upstream")
            extra = []
            if kind == "router":
                nats_port = free_port()
                helpers.append(subprocess.Popen(
                    [str(nats_server_binary()), "-js", "-sd", scratch, "-a", "127.0.0.1", "-p", str(nats_port)],
                    stderr=subprocess.DEVNULL, env=nats_server_env(),
                ))  # fmt: skip
                wait_for_port(nats_port, 10.0, helpers[-1], "nats-server")
                extra = [f"nats://127.0.0.1:{nats_port}"]
                uvloop.run(_add_stream(extra[0]))
            port = free_port()
            helpers.append(_spawn(f"serve-{kind}-process", str(port), str(upstream), *extra))
            wait_for_port(port, 20.0, helpers[-1], kind)
            served = helpers[-1].pid
            uvloop.run(_served_calls(port, 500, CALLERS))  # warm-up
            spent = {}
            for callers, calls in ((CALLERS, total), (1, total // 4)):
                before = _cpu_s(served)
                uvloop.run(_served_calls(port, calls, callers))
                spent[callers] = _per_call_us(_cpu_s(served) - before, calls)
        finally:
            for helper in reversed(helpers):  # the process first: it would report its peers' end
                helper.kill()
                helper.wait()
    return {f"{CALLERS}_callers_us": spent[CALLERS], "1_caller_us": spent[1]}


def bench_floor(total: int = 8000) -> dict[str, object]:
    grpc_hop = _measure_hop("grpc", total)
    http_hop = _measure_hop("http", total)
    events = _measure_events(total)
    edge = _measure_edge()
    processes = {kind: _measure_process(kind, total) for kind in ("router", "adapter")}
    combined = _measure_combined(total)
    combined_us = sum(combined[f"{part}_{CALLERS}_callers_us"] for part in ("process", "nats_server"))
    hop = grpc_hop["client_us"] + grpc_hop["server_us"]
    routed = (
        3 * hop
        + http_hop["server_us"]  # the gateway takes the caller's request
        + http_hop["client_us"]  # the adapter calls the provider
        + 2 * (events["publish_us"] + events["nats_server_us"])
        + events["consume_us"]
    )
    return {
        "what": "The transport alone, no Tierlift code: a grpc.aio unary hop, an aiohttp POST and a JetStream "
        "publish (awaited) with a pull consumer acking each message (core/jetstream_pull.py), each bare in its "
        "own processes on uvloop, "
        f"{CALLERS} concurrent callers, CPU per call from /proc; summed as a routed request over the "
        "OpenAI-compatible edge uses them, it is the least CPU per request this design costs here.",
        "callers": CALLERS,
        "calls_each": total,
        "grpc_hop": grpc_hop,
        "http_hop": http_hop,
        "event": events,
        "edge": edge,
        "processes": processes,
        "routed_request_floor_ms": round(routed / 1000, 2),
        "composition": "3 gRPC hops + 1 HTTP server + 1 HTTP client + 2 JetStream publishes (nats-server included)"
        " + 1 consumed",
        # a prompt the router remembers (gwbench's repeated prompt) skips the classifier's hop
        "repeated_prompt_floor_ms": round((routed - hop) / 1000, 2),
        # one client, over calling the provider directly: the edge, three gRPC round trips and
        # the two publishes a request waits for (attempt.started before spending, request.settled
        # before answering); the adapter's own call to the provider is the direct call's twin
        "one_client_added_p50_floor_ms": round(
            edge["added_p50_ms"] + 3 * grpc_hop["one_caller_p50_ms"] + 2 * events["one_publisher_p50_ms"], 2
        ),
        # the combined topology (gateway, router, classifier and adapter in one process): no gRPC
        # hop, the same edge, provider call and two awaited publishes, measured as one process
        "combined": combined
        | {
            "routed_request_floor_ms": round((combined_us + 2 * events["consume_us"]) / 1000, 2),
            "composition": "1 HTTP server + 1 HTTP client + 2 JetStream publishes in one process, nats-server, "
            "the ledger consuming both events",
        },
    }


def main() -> None:
    what = sys.argv[1]
    if what == "serve-grpc":
        uvloop.run(_serve_grpc(int(sys.argv[2])))
    elif what == "serve-slow-grpc":
        uvloop.run(_serve_grpc(int(sys.argv[2]), delay_s=0.003))
    elif what == "serve-combined":
        uvloop.run(_serve_combined(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
    elif what == "serve-edge":
        uvloop.run(_serve_edge(int(sys.argv[2]), int(sys.argv[3])))
    elif what == "serve-http":
        uvloop.run(_serve_http(int(sys.argv[2])))
    elif what in ("serve-router-process", "serve-adapter-process"):
        uvloop.run(_serve_process(what.split("-")[1], int(sys.argv[2]), sys.argv[3], *sys.argv[4:]))
    elif what == "consume":
        uvloop.run(_consume(sys.argv[2], int(sys.argv[3])))
    else:
        print(json.dumps(bench_floor(), indent=2))


if __name__ == "__main__":
    main()
