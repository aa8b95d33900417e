"""`BENCH=profile make bench`: where a routed request's CPU goes, per process.

The gwbench set-up (the whole embedded stack, one `openai`-family adapter, an upstream that
answers at once in its own process), driven over the OpenAI-compatible edge at 16 clients with
a repeated prompt. Each service's CPU time comes from /proc (user + system, every thread, and
the processes it started: the ledger's signature helper), divided by the requests answered.
With py-spy installed (`pip install py-spy`), each service is also sampled and a flame graph
written to `results/flames/<service>.svg` (`BENCH_FLAME_FORMAT=raw`: collapsed stacks,
`<service>.txt`, for reading with tools).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.wire.stack import start_provider_stack, wire_model
from tierlift.devstack import Stack, free_port, wait_for_port

FLAMES = Path(__file__).parent / "results" / "flames"
CLIENTS = 16


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) of `pid` and of the processes it started: the
    ledger checks signatures in a helper process, whose CPU is the ledger's too."""
    return sum(_own_cpu_s(p) for p in _tree(pid))


def _own_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # it exited since it was listed
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (/proc/<pid>/task/<tid>/children)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        found.append(parent)
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in children.read_text().split())
            except OSError:
                continue
    return found


async def _load(stack: Stack, total: int) -> tuple[int, float, dict[str, int]]:
    url = f"{stack.openai_base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {stack.keys['app']}"}
    body = {"model": "tierlift/auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    remaining = iter(range(total))
    answered, errors = 0, dict[str, int]()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as session:

        async def client() -> None:
            nonlocal answered
            for _ in remaining:
                async with session.post(url, json=body, headers=headers) as reply:
                    await reply.read()
                    if reply.status == 200:
                        answered += 1
                    else:
                        errors[str(reply.status)] = errors.get(str(reply.status), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return answered, time.perf_counter() - started, errors


def _samplers(pids: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each service (not nats-server), when py-spy is installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return []
    flame_format = os.environ.get("BENCH_FLAME_FORMAT", "flamegraph")
    FLAMES.mkdir(parents=True, exist_ok=True)
    samplers = []
    for name, pid in pids.items():
        if name == "nats":
            continue
        out = FLAMES / f"{name}.{'svg' if flame_format == 'flamegraph' else 'txt'}"
        command = [spy, "record", "-p", str(pid), "-o", str(out), "-r", "100", "--nonblocking", "-f", flame_format]
        samplers.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    return samplers


def _run(endpoint: str, total: int, routers: int, flames: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as state:
        stack = start_provider_stack(
            Path(state), [wire_model("wire-open", "HOSTED_OPEN", endpoint, "0.50")], TIERLIFT_LOG_LEVEL="warning"
        )
        samplers: list[subprocess.Popen[bytes]] = []
        try:
            if routers == 2:  # a second router replica; the gateway's round_robin channel spreads over both
                stack.start_service("router-2")
                both = f"ipv4:{stack.addrs['router']},{stack.addrs['router-2']}"
                stack.service_extra_env["gateway"] = {"TIERLIFT_ROUTER_ADDR": both}
                stack.stop_service("gateway")
                stack.start_service("gateway", port=int(stack.addrs["gateway"].rsplit(":", 1)[1]))
            asyncio.run(_load(stack, 400))  # warm-up: connections, caches
            pids = {name: proc.pid for name, proc in stack.procs.items()}
            samplers = _samplers(pids) if flames else []
            before = {name: _cpu_s(pid) for name, pid in pids.items()}
            answered, elapsed, errors = asyncio.run(_load(stack, total))
            after = {name: _cpu_s(pid) for name, pid in pids.items()}
        finally:
            for sampler in samplers:
                sampler.send_signal(2)  # py-spy writes its flame graph on SIGINT
            for sampler in samplers:
                sampler.wait(30)
            stack.stop()
    per_request = {name: round((after[name] - before[name]) * 1000 / max(answered, 1), 3) for name in pids}
    return {
        "routers": routers,
        "answered": answered,
        "errors": errors,
        "answered_per_s": round(answered / elapsed, 1),
        "cpu_ms_per_request": per_request,
        "cpu_ms_per_request_total": round(sum(per_request.values()), 3),
    }


def bench_cpu_profile(total: int = 4000) -> dict[str, object]:
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.wire.server", "--port", str(port), "--model", "wire-open"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 10.0, upstream, "wire upstream")
        endpoint = f"http://127.0.0.1:{port}/v1"
        profiled = _run(endpoint, total, routers=1, flames=True)
        # one router against two, alternating, without py-spy
        replicas = [_run(endpoint, total, routers, flames=False) for routers in (2, 1, 2)]
    finally:
        upstream.terminate()
        upstream.wait(10)
    return {
        "what": f"CPU ms per answered request by process, {CLIENTS} clients over the OpenAI-compatible edge, a "
        "repeated prompt (the router remembers its classification: no classifier call), one openai-family "
        "adapter, an upstream answering at once in its own process (not counted); py-spy sampling at 100 Hz "
        "in the profiled run (its own cost is outside "
        "these processes but shares the cores). router_replicas: the same load with one router and with two "
        "behind the gateway's round_robin channel, alternating, no py-spy.",
        "clients": CLIENTS,
        **profiled,
        "flame_graphs": sorted(str(p.relative_to(FLAMES.parent.parent)) for p in FLAMES.glob("*.*")),
        "router_replicas": replicas,
    }
