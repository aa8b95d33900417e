"""gRPC bootstrap shared by every service: grpc.aio server whose calls are traced and admitted
(ServerCalls), client channels that present a key and the trace context (ClientChannel), the
standard health service and reflection, and a graceful stop on SIGTERM/SIGINT.

Stopping follows the order a platform team expects: health flips to NOT_SERVING (so load
balancers stop sending), the server stops accepting and finishes in-flight calls within the
grace period, then the caller's cleanups run (drain NATS, close the DB, flush telemetry).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import propagate, trace

from tierlift.core.entry import on_stop_signals
from tierlift.core.identity import Authenticate
from tierlift.core.logging import get_logger
from tierlift.core.tls import TlsFiles

if TYPE_CHECKING:
    from tierlift.core.config import ServiceSettings

log = get_logger(__name__)
_tracer = trace.get_tracer("tierlift.grpc")

# Sync or async callables run after the server stopped, in order.
Cleanup = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True)
class _Undecodable:
    error: str


class ServerCalls(grpc.aio.ServerInterceptor):
    """What every served call goes through, in one interceptor: a SERVER span that continues the
    caller's trace (RPC semantic conventions), the caller admitted by `auth`, and a body that is
    not the method's message refused as INVALID_ARGUMENT (gRPC would answer UNKNOWN, which
    clients retry). Health and reflection pass untouched.

    One interceptor, and one wrapped handler per method made on its first call: OpenTelemetry's
    server interceptor, ours for bodies and one for keys wrapped every call's handler anew, three
    layers deep, ~0.1 ms of CPU per call on each service (measured on a bare health server)."""

    def __init__(self, auth: Authenticate | None = None, check: Callable[[Any], str] | None = None) -> None:
        self.auth = auth  # None: every caller is served (in-process test harnesses)
        self.check = check  # why an admitted request is refused as INVALID_ARGUMENT ("" when it is not)
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # method -> (its handler, the wrapped one)

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        method = details.method
        if handler is None or Authenticate.exempt(method):
            return handler
        if handler.request_streaming:
            # No Tierlift method takes a stream of requests, and `_wrap` admits none: one added
            # later is refused until it is admitted here, never served to an unchecked caller.
            return _refused_stream(method, handler)
        made = self._wrapped.get(method)
        if made is None or made[0] is not handler:
            made = self._wrapped[method] = (handler, self._wrap(handler, method))
        return made[1]

    def _wrap(self, handler: Any, method: str) -> Any:
        deserialize = handler.request_deserializer

        def tolerant(data: bytes) -> Any:
            try:
                return deserialize(data)
            except Exception as exc:
                return _Undecodable(f"{exc.__class__.__name__}: {exc}"[:200])

        async def admitted(request: Any, context: grpc.aio.ServicerContext) -> None:
            if isinstance(request, _Undecodable):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: not a valid message ({request.error})")
            if self.auth is not None:
                await self.auth.admit(method, context)
            if self.check is not None and (problem := self.check(request)):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)

        def awaited(inner: Any) -> Any:  # a unary call, or a stream written with context.write
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with _server_span(method, context):
                    await admitted(request, context)
                    return await inner(request, context)

            return call

        def streamed(inner: Any) -> Any:  # a stream an async generator yields
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                # The span is current only while the stream's own code runs, step by step, never
                # across a `yield`: gRPC stops reading at the last message and the generator is
                # closed later in another task, where the context attached here cannot be detached.
                span = _start_server_span(method, context)
                responses = inner(request, context)
                try:
                    with _current(span, context):
                        await admitted(request, context)
                    while True:
                        with _current(span, context):
                            try:
                                response = await anext(responses)
                            except StopAsyncIteration:
                                break
                        yield response
                    span.set_attribute("rpc.grpc.status_code", 0)
                finally:
                    try:
                        with _current(span, context):
                            await responses.aclose()  # its cleanup runs now, under the call's span
                    finally:
                        span.end()

            return call

        if handler.unary_unary is not None:
            make, wrapped = grpc.unary_unary_rpc_method_handler, awaited(handler.unary_unary)
        else:
            inner = handler.unary_stream
            make = grpc.unary_stream_rpc_method_handler
            wrapped = streamed(inner) if inspect.isasyncgenfunction(inner) else awaited(inner)
        return make(wrapped, request_deserializer=tolerant, response_serializer=handler.response_serializer)


def _refused_stream(method: str, handler: Any) -> Any:
    async def refuse(_requests: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method}: request streams are not admitted")

    make = grpc.stream_stream_rpc_method_handler if handler.response_streaming else grpc.stream_unary_rpc_method_handler
    return make(refuse, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)  # fmt: skip


def _start_server_span(method: str, context: grpc.aio.ServicerContext) -> trace.Span:
    """The call's SERVER span (started, not made current), a child of the caller's span when it
    sent `traceparent`."""
    parent = propagate.extract({k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)})
    service, _, name = method.lstrip("/").partition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
    return _tracer.start_span(method, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes)


@contextlib.contextmanager
def _current(span: trace.Span, context: grpc.aio.ServicerContext) -> Iterator[None]:
    """`span` current for the block (not ended by it); a failure sets the call's gRPC status on it.
    A stream closed by its reader (GeneratorExit) is no failure."""
    with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
        try:
            yield
        except GeneratorExit:
            raise
        except BaseException:
            code = context.code() if hasattr(context, "code") else None
            code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
            raise


@contextlib.contextmanager
def _server_span(method: str, context: grpc.aio.ServicerContext) -> Iterator[None]:
    """The call's SERVER span, current for the whole (unary) call and ended with it."""
    span = _start_server_span(method, context)
    try:
        with _current(span, context):
            yield
        span.set_attribute("rpc.grpc.status_code", 0)
    finally:
        span.end()


class GrpcServer:
    def __init__(
        self,
        service: str,
        listen: str,
        grace_s: float,
        auth: Authenticate,
        tls: TlsFiles | None = None,
        health_listen: str = "",
        check: Callable[[Any], str] | None = None,
    ) -> None:
        self.service = service
        self.grace_s = grace_s
        # every service authenticates its callers (core/identity.py); health and reflection are open
        self.server = grpc.aio.server(interceptors=[ServerCalls(auth, check)], options=SERVER_OPTIONS)
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
    def for_settings(
        cls, service: str, settings: ServiceSettings, auth: Authenticate, check: Callable[[Any], str] | None = None
    ) -> GrpcServer:
        tls = settings.tls()
        health_listen = settings.health_listen if tls is not None else ""
        return cls(service, settings.listen, settings.shutdown_grace_s, auth, tls, health_listen, check)

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
        on_stop_signals(self._stopping.set)

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


# A message may be as large as what the edge accepts and then some: the gateway takes 8 MiB
# bodies, and the classifier reads a request's messages and its other provider-bound strings
# side by side (gRPC's default limit, 4 MiB, refused such a request as RESOURCE_EXHAUSTED, which
# the edge answers as a retryable 429)
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
_MESSAGE_LIMITS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]
CHANNEL_OPTIONS = [
    *_MESSAGE_LIMITS,
    # reconnect quickly to a restarted pod instead of gRPC's default backoff of up to 120 s
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # one connection to every address the target resolves to, calls spread over them: with the
    # chart's headless Services (dns:///name:port) every replica of the callee takes its share,
    # where one HTTP/2 connection to a ClusterIP would pin a caller to one pod
    ("grpc.lb_policy_name", "round_robin"),
]
SERVER_OPTIONS = [
    *_MESSAGE_LIMITS,
    # callers reconnect, and so resolve the callee's name again, every few minutes: replicas added
    # by a scale-up get traffic without a restart of the callers; calls in flight get 2 minutes
    ("grpc.max_connection_age_ms", 300_000),
    ("grpc.max_connection_age_grace_ms", 120_000),
]


def client_channel(target: str, key: str = "", tls: TlsFiles | None = None) -> ClientChannel:
    """A channel that presents `key` (this service's service key) and the trace context on every
    call, each call in a CLIENT span; over TLS when `tls` is given (and then with this service's
    client certificate). A component this process hosts (`tierlift serve`) is called directly."""
    from tierlift.core import local_channel  # imported here: it builds on this module

    if (local := local_channel.hosted(target)) is not None:
        return local.channel(key)  # type: ignore[return-value]  # ClientChannel's interface, in-process
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
