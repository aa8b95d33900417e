"""What a tool call costs at the edge (`BENCH=tools make bench` -> tools.json): one client, through
the OpenAI-compatible edge, alternating the same question plain and with one function tool the
upstream (a local OpenAI wire server answering at once) calls; the tool call's arguments are
checked against the tool's JSON Schema by the router, and the tool travels to the classifier as
parts. The difference of the medians, and its share of the plain request's, is the tools path's
cost."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.stack_keys import app_key
from tierlift.devstack import Stack

QUESTION = "What is the weather in Paris?"
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"], "additionalProperties": False}}}  # fmt: skip


async def _measure(stack: Stack, rounds: int) -> dict[str, float]:
    key = app_key(stack, "bench")
    plain: list[float] = []
    tools: list[float] = []
    body = {"model": "tierlift/auto", "messages": [{"role": "user", "content": QUESTION}]}
    headers = {"Authorization": f"Bearer {key}", "x-tierlift-workload": "tools"}
    async with aiohttp.ClientSession() as http:
        for i in range(rounds + 20):  # the first 20 warm both paths
            times = []
            for payload in (body, {**body, "tools": [TOOL]}):
                started = time.perf_counter()
                async with http.post(f"{stack.openai_base_url}/chat/completions", json=payload, headers=headers) as r:
                    assert r.status == 200, await r.text()
                    answer = await r.json()
                times.append((time.perf_counter() - started) * 1000)
            assert answer["choices"][0]["finish_reason"] == "tool_calls"
            if i >= 20:
                plain.append(times[0])
                tools.append(times[1])
    added = statistics.median(tools) - statistics.median(plain)
    return {
        "plain_p50_ms": round(statistics.median(plain), 3),
        "tools_p50_ms": round(statistics.median(tools), 3),
        "added_p50_ms": round(added, 3),
        "added_share": round(added / statistics.median(plain), 4),
        "rounds": rounds,
    }


def bench_tools(rounds: int = 300) -> dict[str, object]:
    from tests.wire.server import WireServer
    from tests.wire.stack import start_provider_stack, wire_model

    upstream = WireServer()
    upstream.start()
    capabilities = {"streaming": True, "logprobs": True, "tools": True}
    with tempfile.TemporaryDirectory() as state:
        model = wire_model("wire-open", "HOSTED_OPEN", upstream.endpoint, "0.50", capabilities=capabilities)
        stack = start_provider_stack(Path(state), [model], TIERLIFT_LOG_LEVEL="warning")
        try:
            result = asyncio.run(_measure(stack, rounds))
        finally:
            stack.stop()
            upstream.stop()
    return {"what": __doc__.split("\n\n")[0].replace("\n", " "), **result}
