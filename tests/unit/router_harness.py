"""A router over real gRPC with in-process servers: the real classifier, and a scripted backend
per adapter whose failures and confidence a test sets. Shared by the ladder and property tests."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message as ProtoMessage

from tierlift.adapters import AdapterServicer, BackendError, signals_from_logprobs
from tierlift.classifier import ClassifierServicer
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.core.grpc_server import ServerCalls
from tierlift.router import RouterDeps, RouterServicer
from tierlift.router._shadow import Shadows
from tierlift.v1 import adapter_pb2, adapter_pb2_grpc, classifier_pb2_grpc, common_pb2, events_pb2, router_pb2_grpc

CATALOG = load_catalog(DEFAULT_CATALOG)


@dataclass
class ScriptedBackend:
    """Answers with a fixed token probability, or fails with a fixed status."""

    adapter: str
    token_prob: float = 0.9
    fail_with: grpc.StatusCode | None = None
    delay_s: float = 0.0
    failing_models: set[str] = field(default_factory=set)  # fail_with applies to these only, when given
    calls: list[str] = field(default_factory=list)
    family: str = "scripted"

    def describe(self) -> adapter_pb2.AdapterDescription:
        models = [m.id for m in CATALOG.models if m.adapter == self.adapter]
        return adapter_pb2.AdapterDescription(adapter=self.adapter, backend=self.family, models=models)

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        self.calls.append(request.model)
        await asyncio.sleep(self.delay_s)
        if self.fail_with is not None and (not self.failing_models or request.model in self.failing_models):
            raise BackendError(self.fail_with, f"{self.adapter} is failing on purpose")
        return adapter_pb2.GenerateResponse(
            text=f"answer from {request.model}",
            finish_reason="stop",
            usage=common_pb2.Usage(input_tokens=100, output_tokens=20),
            confidence=signals_from_logprobs([math.log(self.token_prob)] * 20),
        )

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        summary = await self.generate(request)
        yield adapter_pb2.GenerateChunk(text=summary.text)
        yield adapter_pb2.GenerateChunk(final=True, summary=summary)

    async def close(self) -> None:
        return None


@dataclass
class RecordingPublisher:
    events: list[tuple[str, ProtoMessage, str]] = field(default_factory=list)
    broken: bool = False

    async def publish(self, subject: str, event: ProtoMessage, event_id: str, ttl_s: float | None = None) -> None:
        if self.broken:
            raise ConnectionError("nats down")
        self.events.append((subject, event, event_id))

    def _unpacked(self) -> list[ProtoMessage]:
        """Every event published, a settled request as its outcome and attempts."""
        out: list[ProtoMessage] = []
        for _, event, _ in self.events:
            out.extend([event.completed, *event.attempts] if isinstance(event, events_pb2.RequestSettled) else [event])
        return out

    def attempts(self) -> list[events_pb2.AttemptFinished]:
        """Every attempt published, alone or inside a settled request, in order."""
        return [e for e in self._unpacked() if isinstance(e, events_pb2.AttemptFinished)]

    def completions(self) -> list[events_pb2.RequestCompleted]:
        """Every request outcome published, alone or inside a settled request, in order."""
        return [e for e in self._unpacked() if isinstance(e, events_pb2.RequestCompleted)]


@asynccontextmanager
async def serve_router(
    backends: list[ScriptedBackend], shadows: Shadows | None = None, **deps: Any
) -> AsyncIterator[router_pb2_grpc.RouterStub]:
    """Adapters, classifier and router on loopback ports; `deps` are the RouterDeps fields
    besides the stubs and the catalog (publisher, policy, budgets, timeouts...). `shadows`, if
    given, is wired to these adapters."""
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []
    addresses: dict[str, str] = {}  # servicer class -> address, for tests that send raw bytes

    def serve(add: Any, servicer: Any) -> grpc.aio.Channel:
        server = grpc.aio.server(interceptors=[ServerCalls()])  # as GrpcServer does, no caller check
        add(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        servers.append(server)
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        addresses[servicer.__class__.__name__] = f"127.0.0.1:{port}"
        return channels[-1]

    adapters = {
        b.adapter: adapter_pb2_grpc.ModelAdapterStub(
            serve(adapter_pb2_grpc.add_ModelAdapterServicer_to_server, AdapterServicer(b))
        )
        for b in backends
    }
    classifier = classifier_pb2_grpc.ClassifierStub(
        serve(classifier_pb2_grpc.add_ClassifierServicer_to_server, ClassifierServicer())
    )
    if shadows is not None:
        shadows.adapters = adapters
    router_deps = RouterDeps(classifier=classifier, adapters=adapters, catalog=CATALOG, shadows=shadows, **deps)
    servicer = RouterServicer(router_deps)
    router = router_pb2_grpc.RouterStub(serve(router_pb2_grpc.add_RouterServicer_to_server, servicer))
    router.addresses = addresses  # type: ignore[attr-defined]
    router.adapter_servers = dict(zip(adapters, servers, strict=False))  # type: ignore[attr-defined]  # to kill one
    router.servicer = servicer  # type: ignore[attr-defined]  # for tests that drive a call's generator
    for server in servers:
        await server.start()
    try:
        yield router
    finally:
        for ch in channels:
            await ch.close()
        for server in servers:
            await server.stop(None)
