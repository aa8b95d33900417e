"""`BENCH=classifier make bench`: the classifier service alone under load, every prompt new, at
1 and 16 concurrent calls over gRPC: the held-out labelled rows as they are (~37 tokens), and
joined into prompts of about 200 tokens (every kind of text and data appears in both). Reports
latency, throughput, the classifier process's CPU per prompt (from /proc) and its resident
memory (now and at its peak)."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

from tests.benchmarks.cpu_profile import _cpu_s
from tests.benchmarks.run import LABELLED, _summary
from tierlift.core.tokens import estimate_tokens
from tierlift.devstack import Stack
from tierlift.v1 import classifier_pb2, classifier_pb2_grpc, common_pb2

PROMPT_TOKENS = 200


def prompts(count: int, tokens: int = PROMPT_TOKENS) -> list[str]:
    """`count` distinct prompts of at least `tokens` tokens each (1: a row each), from the held-out rows."""
    rows = [json.loads(line) for line in LABELLED.read_text().splitlines()]
    texts = [r["text"] for r in rows if r["split"] == "test"]
    made: list[str] = []
    i = 0
    while len(made) < count:
        parts: list[str] = []
        while not parts or estimate_tokens("\n".join(parts)) < tokens:
            parts.append(texts[i % len(texts)])
            i += 1
        made.append(f"{len(made)}. " + "\n".join(parts))
    return made


def _memory_mb(pid: int) -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: round(int(status[key].split()[0]) / 1024, 1) for key in ("VmRSS", "VmHWM")}


async def _level(stack: Stack, texts: list[str], clients: int) -> dict[str, object]:
    timings: list[float] = []
    pending = iter(texts)
    pid = stack.procs["classifier"].pid
    async with stack.aio_channel("classifier") as channel:
        classifier = classifier_pb2_grpc.ClassifierStub(channel)

        async def client() -> None:
            for text in pending:
                request = classifier_pb2.ClassifyRequest(messages=[common_pb2.Message(role="user", content=text)])
                started = time.perf_counter()
                await classifier.Classify(request, timeout=30)
                timings.append((time.perf_counter() - started) * 1000)

        cpu_before, started = _cpu_s(pid), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed, cpu = time.perf_counter() - started, _cpu_s(pid) - cpu_before
    return {
        "clients": clients,
        "prompts": len(texts),
        **_summary(timings),
        "per_s": round(len(texts) / elapsed, 1),
        "classifier_cpu_ms_per_prompt": round(cpu * 1000 / len(texts), 3),
    }


def bench_classifier_load(per_level: int = 1600) -> dict[str, object]:
    sets = {"held_out_rows": prompts(per_level * 2, tokens=1), f"joined_{PROMPT_TOKENS}_tokens": prompts(per_level * 2)}
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as state:
        stack = Stack(Path(state))
        stack.start()
        try:
            asyncio.run(_level(stack, [f"warm-up {i}" for i in range(100)], 4))
            for name, texts in sets.items():
                results[name] = {
                    "mean_prompt_tokens": round(sum(map(estimate_tokens, texts)) / len(texts)),
                    "levels": [
                        asyncio.run(_level(stack, texts[i * per_level : (i + 1) * per_level], clients))
                        for i, clients in enumerate((1, 16))
                    ],
                }
            memory = _memory_mb(stack.procs["classifier"].pid)
        finally:
            stack.stop()
    return {
        "what": "Classifier.Classify over gRPC, every prompt new: held-out labelled rows as they are, and joined "
        f"into prompts of ~{PROMPT_TOKENS} tokens; one classifier process; client and service share this "
        "machine's cores",
        **results,
        "classifier_memory_mb": memory,
    }
