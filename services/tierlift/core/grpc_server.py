"""gRPC bootstrap shared by every service: grpc.aio server with tracing interceptors, the
standard health service and reflection, and a graceful stop on SIGTERM/SIGINT.

Stopping follows the order a platform team expects: health flips to NOT_SERVING (so load
balancers stop sending), the server stops accepting and finishes in-flight calls within the
grace period, then the caller's cleanups run (drain NATS, close the DB, flush telemetry).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

from tierlift.core.logging import get_logger
from tierlift.core.tls import TlsFiles

if TYPE_CHECKING:
    from tierlift.core.config import ServiceSettings

log = get_logger(__name__)
_tracer = trace.get_tracer("tierlift.grpc")

# Sync or async callables run after the server stopped, in order.
Cleanup = Callable[[], Awaitable[None] | None]
# Health checks are polled constantly; keep them out of traces.
_NOT_HEALTH = filters.negate(filters.health_check())


@dataclass(frozen=True)
class _Undecodable:
    error: str


class UndecodableIsInvalidArgument(grpc.aio.ServerInterceptor):
    """A body that is not the method's message is the caller's error (INVALID_ARGUMENT), not the
    server's: gRPC would answer a failed deserialisation with UNKNOWN, which clients retry."""

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None or handler.request_streaming:
            return handler
        deserialize = handler.request_deserializer

        def tolerant(data: bytes) -> Any:
            try:
                return deserialize(data)
            except Exception as exc:
                return _Undecodable(f"{exc.__class__.__name__}: {exc}"[:200])

        async def refuse(request: _Undecodable, context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: not a valid message ({request.error})")

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(request, _Undecodable):
                    await refuse(request, context)
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, request_deserializer=tolerant, response_serializer=handler.response_serializer
            )
        inner_stream = handler.unary_stream
        if not inspect.isasyncgenfunction(inner_stream):
            return handler  # a handler that writes with context.write (gRPC's health Watch)

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                await refuse(request, context)
            async for response in inner_stream(request, context):
                yield response

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, request_deserializer=tolerant, response_serializer=handler.response_serializer
        )


class GrpcServer:
    def __init__(
        self,
        service: str,
        listen: str,
        grace_s: float,
        auth: grpc.aio.ServerInterceptor,
        tls: TlsFiles | None = None,
        health_listen: str = "",
    ) -> None:
        self.service = service
        self.grace_s = grace_s
        # every service authenticates its callers (core/identity.py); health and reflection are open
        self.server = grpc.aio.server(
            interceptors=[aio_server_interceptor(filter_=_NOT_HEALTH), UndecodableIsInvalidArgument(), auth]
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if tls is None:
            self.port = self.server.add_insecure_port(listen)
        else:
            self.port = self.server.add_secure_port(listen, tls.server_credentials())
        if self.port == 0:
            raise OSError(f"{service}: cannot listen on {listen}")
        # kubelet's gRPC probe speaks no TLS: with TLS on, health is also served in the clear on
        # its own port (it says SERVING or not, nothing more)
        self.health_server: grpc.aio.Server | None = None
        if health_listen:
            self.health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            if self.health_server.add_insecure_port(health_listen) == 0:
                raise OSError(f"{service}: cannot listen on {health_listen} (health)")
        self._service_names: list[str] = []
        self._stopping = asyncio.Event()

    @classmethod
    def for_settings(cls, service: str, settings: ServiceSettings, auth: grpc.aio.ServerInterceptor) -> GrpcServer:
        tls = settings.tls()
        health_listen = settings.health_listen if tls is not None else ""
        return cls(service, settings.listen, settings.shutdown_grace_s, auth, tls, health_listen)

    def add_service(self, full_name: str) -> None:
        """Record a servicer's full name for health and reflection (call after adding it)."""
        self._service_names.append(full_name)

    async def start(self) -> None:
        reflection.enable_server_reflection(
            [*self._service_names, reflection.SERVICE_NAME, health.SERVICE_NAME], self.server
        )
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        for name in ["", *self._service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc_serving", port=self.port, services=self._service_names)

    def stop_on_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)

    async def serve_until_stopped(self, cleanups: Sequence[Cleanup] = ()) -> None:
        await self._stopping.wait()
        log.info("shutdown_started", grace_s=self.grace_s)
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace_s)
        if self.health_server is not None:
            await self.health_server.stop(0)
        for cleanup in cleanups:
            try:
                result = cleanup()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("cleanup_failed", cleanup=getattr(cleanup, "__qualname__", repr(cleanup)))
        log.info("shutdown_finished")

    def request_stop(self) -> None:
        self._stopping.set()


# Reconnect quickly to a restarted pod instead of gRPC's default backoff of up to 120 s.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def client_channel(target: str, key: str = "", tls: TlsFiles | None = None) -> ClientChannel:
    """A channel that presents `key` (this service's service key) and the trace context on every
    call, each call in a CLIENT span; over TLS when `tls` is given (and then with this service's
    client certificate)."""
    if tls is None:
        return ClientChannel(grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS), key)
    return ClientChannel(grpc.aio.secure_channel(target, tls.channel_credentials(), options=CHANNEL_OPTIONS), key)


class ClientChannel:
    """What generated stubs need of a channel, with the service key and the W3C trace context
    added to every call's metadata and a CLIENT span (RPC semantic conventions) around it.

    OpenTelemetry's and our key's client interceptors did this before; grpc.aio runs every
    intercepted call through an extra task and wrappers, which cost the router ~0.15 ms of CPU
    per request (`BENCH=profile make bench`). Unary calls become coroutines (await them, or wrap
    them in a task); streams are async iterators that cancel their call when left early."""

    def __init__(self, channel: grpc.aio.Channel, key: str) -> None:
        self._channel = channel
        self._key = (("authorization", f"Bearer {key}"),) if key else ()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return functools.partial(self._unary, self._channel.unary_unary(method, *args, **kwargs), method)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return functools.partial(self._stream, self._channel.unary_stream(method, *args, **kwargs), method)

    def _start(self, method: str, metadata: Any) -> tuple[trace.Span, tuple[tuple[str, str], ...]]:
        service, _, name = method.lstrip("/").partition("/")
        span = _tracer.start_span(
            method.lstrip("/"),
            kind=trace.SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return span, (*(metadata or ()), *self._key, *carrier.items())

    async def _unary(self, call: Any, method: str, request: Any, *, metadata: Any = None, **kwargs: Any) -> Any:
        span, presented = self._start(method, metadata)
        try:
            return await call(request, metadata=presented, **kwargs)
        except grpc.aio.AioRpcError as exc:
            _failed(span, exc)
            raise
        finally:
            span.end()

    async def _stream(self, call: Any, method: str, request: Any, *, metadata: Any = None, **kwargs: Any) -> Any:
        span, presented = self._start(method, metadata)
        responses = call(request, metadata=presented, **kwargs)
        try:
            async for response in responses:
                yield response
        except grpc.aio.AioRpcError as exc:
            _failed(span, exc)
            raise
        finally:
            responses.cancel()  # nothing when it ended; else the caller stopped reading
            span.end()

    async def channel_ready(self) -> None:
        await self._channel.channel_ready()

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)


def _failed(span: trace.Span, exc: grpc.aio.AioRpcError) -> None:
    span.set_attribute("rpc.grpc.status_code", exc.code().value[0])
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{exc.code().name}: {exc.details()}"))
