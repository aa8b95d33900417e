"""Self-hosted model servers (vLLM, SGLang, Text Generation Inference, Ollama): each speaks
the OpenAI chat-completions API, so they share the OpenAI-compatible backend, plus load awareness.

A poller reads each server's health endpoint and, where the server exports them, its Prometheus
metrics (queue depth and KV-cache use). A server that is down, or saturated past the configured
limits, is refused at once with UNAVAILABLE or RESOURCE_EXHAUSTED, so the router moves to the
next rung instead of queueing behind a full GPU.

| server | health | queue depth | KV-cache use |
| --- | --- | --- | --- |
| vLLM | `/health` | `vllm:num_requests_waiting` | `vllm:kv_cache_usage_perc` (older: `gpu_cache_usage_perc`) |
| SGLang (`--enable-metrics`) | `/health` | `sglang:num_queue_reqs` | `sglang:token_usage` |
| TGI | `/health` | `tgi_queue_size` | not exported |
| Ollama (development) | `/` | not exported | not exported |
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
from prometheus_client.parser import text_string_to_metric_families

from tierlift.adapters._backend import BackendError
from tierlift.adapters.openai_compat import OpenAICompatBackend
from tierlift.core.catalog import Model
from tierlift.core.logging import get_logger
from tierlift.v1 import adapter_pb2

log = get_logger(__name__)


@dataclass(frozen=True)
class ServerKind:
    health_path: str
    metrics_path: str  # "" when the server exports no Prometheus metrics
    waiting: tuple[str, ...] = ()  # gauges of requests queued
    kv_cache: tuple[str, ...] = ()  # gauges of KV-cache use, 0..1


KINDS = {
    # vLLM v1 reports kv_cache_usage_perc; older releases gpu_cache_usage_perc
    "vllm": ServerKind("/health", "/metrics", ("vllm:num_requests_waiting",),
                       ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")),
    "sglang": ServerKind("/health", "/metrics", ("sglang:num_queue_reqs",), ("sglang:token_usage",)),
    "tgi": ServerKind("/health", "/metrics", ("tgi_queue_size",)),
    "ollama": ServerKind("/", ""),
}  # fmt: skip


@dataclass
class PodLoad:
    healthy: bool = True
    waiting: float = 0.0
    kv_cache: float = 0.0
    error: str = ""


def parse_metrics(text: str, kind: ServerKind = KINDS["vllm"]) -> PodLoad:
    load = PodLoad()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in kind.waiting:
                load.waiting += sample.value
            elif sample.name in kind.kv_cache:
                load.kv_cache = max(load.kv_cache, sample.value)
    return load


def _get(url: str, timeout_s: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as reply:
        body: bytes = reply.read()
        return body.decode()


class SelfHostedBackend(OpenAICompatBackend):
    def __init__(
        self,
        adapter: str,
        models: Sequence[Model],
        timeout_s: float,
        max_retries: int,
        max_waiting: int,
        max_kv_cache: float,
        poll_s: float = 1.0,
        family: str = "vllm",
    ) -> None:
        super().__init__(adapter, models, timeout_s, max_retries)
        self.family, self.kind = family, KINDS[family]
        self.max_waiting, self.max_kv_cache, self.poll_s = max_waiting, max_kv_cache, poll_s
        self.roots = {m.id: m.resolved_endpoint(os.environ).rstrip("/").removesuffix("/v1") for m in models}
        self.load = {root: PodLoad() for root in self.roots.values()}
        self._poller: asyncio.Task[None] | None = None

    async def poll_once(self) -> None:
        for root in self.load:
            try:
                await asyncio.to_thread(_get, f"{root}{self.kind.health_path}", 2.0)
                load = PodLoad()
                if self.kind.metrics_path:
                    load = parse_metrics(
                        await asyncio.to_thread(_get, f"{root}{self.kind.metrics_path}", 2.0), self.kind
                    )
            except Exception as exc:
                load = PodLoad(healthy=False, error=f"{exc.__class__.__name__}: {exc}")
            if load.healthy != self.load[root].healthy:
                log.warning("model_server_health_changed", server=root, family=self.family, healthy=load.healthy,
                            error=load.error)  # fmt: skip
            self.load[root] = load

    async def _poll_forever(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.poll_s)

    def _check_load(self, model_id: str) -> None:
        if self._poller is None:  # started lazily: needs the server's running event loop
            self._poller = asyncio.get_running_loop().create_task(self._poll_forever())
        root = self.roots[model_id]
        load = self.load[root]
        if not load.healthy:
            raise BackendError(grpc.StatusCode.UNAVAILABLE, f"{self.family} server {root} is not healthy: {load.error}")
        if load.waiting > self.max_waiting or load.kv_cache >= self.max_kv_cache:
            raise BackendError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self.family} server {root} is saturated: {load.waiting:.0f} requests waiting "
                f"(limit {self.max_waiting}), "
                f"KV cache {load.kv_cache:.0%} (limit {self.max_kv_cache:.0%})",
            )

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        self._check_load(request.model)
        return await super().generate(request)

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        self._check_load(request.model)
        async for chunk in super().stream(request):
            yield chunk

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await super().close()
