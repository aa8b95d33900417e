"""`BENCH=classifier make bench`: the classifier service alone under load, with new prompts of
about 200 tokens (held-out labelled rows joined, so every kind of text and data appears), at 1
and 16 concurrent calls over gRPC. Reports latency, throughput, the classifier process's CPU per
prompt (from /proc) and its resident memory (now and at its peak)."""

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


def prompts(count: int) -> list[str]:
    """`count` distinct prompts of about PROMPT_TOKENS tokens each, from the held-out rows."""
    rows = [json.loads(line) for line in LABELLED.read_text().splitlines()]
    texts = [r["text"] for r in rows if r["split"] == "test"]
    made: list[str] = []
    i = 0
    while len(made) < count:
        parts: list[str] = []
        while estimate_tokens("\n".join(parts)) < PROMPT_TOKENS:
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
    texts = prompts(per_level * 3)
    with tempfile.TemporaryDirectory() as state:
        stack = Stack(Path(state))
        stack.start()
        try:
            asyncio.run(_level(stack, texts[:100], 4))  # warm-up
            levels = [
                asyncio.run(_level(stack, texts[i * per_level : (i + 1) * per_level], clients))
                for i, clients in enumerate((1, 16), start=1)
            ]
            memory = _memory_mb(stack.procs["classifier"].pid)
        finally:
            stack.stop()
    return {
        "what": f"Classifier.Classify over gRPC, every prompt new (~{PROMPT_TOKENS} tokens, held-out labelled rows "
        "joined); one classifier process; client and service share this machine's cores",
        "mean_prompt_tokens": round(sum(map(estimate_tokens, texts)) / len(texts)),
        "levels": levels,
        "classifier_memory_mb": memory,
    }
