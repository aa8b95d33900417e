"""`BENCH=profile make bench`: where a routed request's CPU goes, per process.

The gwbench set-up (the whole embedded stack, one `openai`-family adapter, an upstream that
answers at once in its own process), driven over the OpenAI-compatible edge at 16 clients with
a repeated prompt. Each process's CPU time comes from /proc (user + system, children included
for nats-server's threads), divided by the requests answered. With py-spy installed
(`pip install py-spy`), each service is also sampled and a flame graph written to
`results/flames/<service>.svg` (`BENCH_FLAME_FORMAT=raw`: collapsed stacks, `<service>.txt`, for reading
with tools).
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
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


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


def bench_cpu_profile(total: int = 4000) -> dict[str, object]:
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.wire.server", "--port", str(port), "--model", "wire-open"],
        stdout=subprocess.DEVNULL,
    )
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    samplers: list[subprocess.Popen[bytes]] = []
    try:
        wait_for_port(port, 10.0, upstream, "wire upstream")
        with tempfile.TemporaryDirectory() as state:
            endpoint = f"http://127.0.0.1:{port}/v1"
            stack = start_provider_stack(
                Path(state), [wire_model("wire-open", "HOSTED_OPEN", endpoint, "0.50")], TIERLIFT_LOG_LEVEL="warning"
            )
            try:
                asyncio.run(_load(stack, 400))  # warm-up: connections, caches
                pids = {name: proc.pid for name, proc in stack.procs.items()}
                flame_format = os.environ.get("BENCH_FLAME_FORMAT", "flamegraph")
                if Path(spy).exists():
                    FLAMES.mkdir(parents=True, exist_ok=True)
                    for name, pid in pids.items():
                        if name == "nats":
                            continue
                        out = FLAMES / f"{name}.{'svg' if flame_format == 'flamegraph' else 'txt'}"
                        command = [spy, "record", "-p", str(pid), "-o", str(out), "-r", "100", "--nonblocking"]
                        samplers.append(
                            subprocess.Popen(
                                [*command, "-f", flame_format], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                            )
                        )
                    time.sleep(1.0)
                before = {name: _cpu_s(pid) for name, pid in pids.items()}
                answered, elapsed, errors = asyncio.run(_load(stack, total))
                after = {name: _cpu_s(pid) for name, pid in pids.items()}
            finally:
                for sampler in samplers:
                    sampler.send_signal(2)  # py-spy writes its flame graph on SIGINT
                for sampler in samplers:
                    sampler.wait(30)
                stack.stop()
    finally:
        upstream.terminate()
        upstream.wait(10)
    per_request = {name: round((after[name] - before[name]) * 1000 / max(answered, 1), 3) for name in pids}
    return {
        "what": f"CPU ms per answered request by process, {CLIENTS} clients over the OpenAI-compatible edge, a "
        "repeated prompt (classifier cache hit), one openai-family adapter, an upstream answering at once in "
        "its own process (not counted); py-spy sampling at 100 Hz when installed (its own cost is outside "
        "these processes but shares the cores).",
        "clients": CLIENTS,
        "answered": answered,
        "errors": errors,
        "answered_per_s": round(answered / elapsed, 1),
        "cpu_ms_per_request": per_request,
        "cpu_ms_per_request_total": round(sum(per_request.values()), 3),
        "flame_graphs": sorted(str(p.relative_to(FLAMES.parent.parent)) for p in FLAMES.glob("*.*"))
        if samplers
        else [],
    }
