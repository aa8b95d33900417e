"""Calls between components hosted in one process (`tierlift serve --components`, the
`combined` topology): a direct call on the callee's servicer, without a network or a
serialisation, keeping what the gRPC path guarantees.

A `LocalEndpoint` holds one component's servicers, registered by the generated
`add_*Servicer_to_server` as on a grpc.aio server, and runs every call through that component's
own `ServerCalls` (core/grpc_server.py): the same authorisation function (`Authenticate.admit`)
on the caller's presented key, the same request check, the same SERVER span. A `LocalChannel` is
what the generated stubs need of a channel (`unary_unary`, `unary_stream`), with the semantics
the callers rely on:

- a unary call is a coroutine (as `ClientChannel`'s): await it, or wrap it in a task; a server
  stream is an async iterator with `cancel()`;
- `timeout=`: the callee's `context.time_remaining()`, and past it the callee is cancelled and the
  caller gets DEADLINE_EXCEEDED; a caller cancelled cancels the callee, as a cancelled RPC does;
- `metadata=`: the callee's `context.invocation_metadata()`, with the channel's key
  (`authorization: Bearer`) and the W3C trace context added, as `ClientChannel` adds them;
- `context.abort(code, details)` (and `set_trailing_metadata`) reach the caller as
  `grpc.aio.AioRpcError` with that code, details and trailing metadata; any other exception as
  UNKNOWN, as grpc.aio's server answers it;
- the callee runs in a task of its own (a copy of the caller's contextvars), so the principal it
  admits (`identity.current_principal`) never leaks into the caller's context.

What the callers here do not use is refused loudly (`NotInProcess`): other call options
(`wait_for_ready`, `credentials`, `compression`), request streams, servicer-context features
beyond those above, and stream handlers that write with `context.write`. Messages pass by
reference: no servicer here changes its request or keeps its response (a copy would cost what
serialisation costs).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, NamedTuple

import grpc
import structlog
from opentelemetry import propagate

from tierlift.core.grpc_server import ServerCalls
from tierlift.core.identity import Authenticate
from tierlift.core.logging import get_logger

log = get_logger(__name__)

Metadata = tuple[tuple[str, str | bytes], ...]
_STREAM_AHEAD = 16  # messages a stream's callee may produce before its caller reads them


class NotInProcess(AttributeError):
    """A channel, call or context feature that in-process calls do not offer (an AttributeError,
    so `hasattr` probes answer False rather than fail)."""


class _Details(NamedTuple):  # what ServerCalls and generic handlers read of grpc.HandlerCallDetails
    method: str
    invocation_metadata: Metadata


class LocalContext:
    """The servicer context of an in-process call: what Tierlift's servicers and ServerCalls use."""

    def __init__(self, metadata: Metadata, deadline: float | None) -> None:
        self._metadata = metadata
        self._deadline = deadline  # loop time
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing: Metadata = ()
        self._initial: Metadata = ()

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()) -> None:
        if code == grpc.StatusCode.OK:
            raise ValueError("abort: the status code must not be OK")
        self._code, self._details = code, details
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        raise grpc.aio.AbortError(f"{code.name}: {details}")

    def set_trailing_metadata(self, trailing_metadata: Metadata) -> None:
        self._trailing = tuple(trailing_metadata)

    async def send_initial_metadata(self, initial_metadata: Metadata) -> None:
        self._initial = tuple(initial_metadata)  # the caller sees it on a failure (core/adapter_calls.py)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}  # no transport, so no verified peer certificate: a key must be presented

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    def peer(self) -> str:
        return "in-process"

    def __getattr__(self, name: str) -> Any:
        raise NotInProcess(f"in-process call: the servicer context's {name!r} is not offered (core/local_channel.py)")

    def error(self, exc: BaseException) -> grpc.aio.AioRpcError:
        """What the caller sees of the callee's failure `exc`."""
        initial, trailing = grpc.aio.Metadata(*self._initial), grpc.aio.Metadata(*self._trailing)
        if self._code is not None and self._code != grpc.StatusCode.OK:  # aborted, or set before raising
            return grpc.aio.AioRpcError(self._code, initial, trailing, self._details)
        if isinstance(exc, grpc.aio.AioRpcError):  # a callee that let its own callee's error through
            return grpc.aio.AioRpcError(grpc.StatusCode.UNKNOWN, initial, trailing, f"Unexpected {exc!r}")
        log.error("local_call_failed", error=f"{exc.__class__.__name__}: {exc}"[:300])
        return grpc.aio.AioRpcError(grpc.StatusCode.UNKNOWN, initial, trailing, f"Unexpected {type(exc)}: {exc}")

    def deadline_exceeded(self) -> grpc.aio.AioRpcError:
        """The caller's deadline passed: what the callee had sent of its metadata, no status of its own."""
        initial = grpc.aio.Metadata(*self._initial)
        return grpc.aio.AioRpcError(
            grpc.StatusCode.DEADLINE_EXCEEDED, initial, grpc.aio.Metadata(), "Deadline Exceeded"
        )


class LocalEndpoint:
    """One component's servicers, callable in this process. Pass it where a generated
    `add_*Servicer_to_server` wants a server; `auth` and `check` are the component's own (what its
    GrpcServer would be given)."""

    def __init__(self, name: str, auth: Authenticate | None, check: Callable[[Any], str] | None = None) -> None:
        self.name = name
        self._calls = ServerCalls(auth, check)
        self._registered: dict[str, Any] = {}  # method -> its handler, as registered
        self._generic: list[Any] = []
        self._admitted: dict[str, Any] = {}  # method -> the handler ServerCalls wrapped

    # what the generated add_*Servicer_to_server call on a server
    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        self._generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self._registered |= {f"/{service}/{name}": handler for name, handler in handlers.items()}

    def channel(self, key: str = "") -> LocalChannel:
        """A channel to this component that presents `key` (the caller's service key), as
        `client_channel` would."""
        return LocalChannel(self, key)

    def serves(self, method: str) -> bool:
        return self._raw(method) is not None

    def _raw(self, method: str) -> Any:
        handler = self._registered.get(method)
        for generic in self._generic if handler is None else ():
            if (handler := generic.service(_Details(method, ()))) is not None:
                break
        return handler

    async def handler(self, method: str) -> Any:
        """`method`'s handler as ServerCalls wraps it (admission, check, span), made once."""
        admitted = self._admitted.get(method)
        if admitted is not None:
            return admitted
        raw = self._raw(method)
        if raw is None:
            raise NotInProcess(f"{self.name}: {method} is not served in this process")
        if raw.request_streaming:
            raise NotInProcess(f"{method}: request streams are not offered in-process")
        if raw.unary_stream is not None and not inspect.isasyncgenfunction(raw.unary_stream):
            raise NotInProcess(f"{method}: a stream written with context.write is not offered in-process")

        async def as_registered(_details: Any) -> Any:
            return raw

        admitted = await self._calls.intercept_service(as_registered, _Details(method, ()))
        self._admitted[method] = admitted
        return admitted


def _refuse(method: str, options: dict[str, Any]) -> None:
    if options:
        raise NotInProcess(f"{method}: call options {sorted(options)} are not offered in-process")


class LocalChannel:
    """What generated stubs need of a channel, calling a `LocalEndpoint` in this process.
    Serialisers the stubs pass are ignored: messages pass as they are."""

    def __init__(self, endpoint: LocalEndpoint, key: str = "") -> None:
        self._endpoint = endpoint
        self._key: Metadata = (("authorization", f"Bearer {key}"),) if key else ()

    def unary_unary(self, method: str, *_args: Any, **_kwargs: Any) -> Callable[..., Any]:
        return lambda request, **options: self._unary(method, request, **options)

    def unary_stream(self, method: str, *_args: Any, **_kwargs: Any) -> Callable[..., Any]:
        return lambda request, **options: LocalStream(self, method, request, **options)

    def stream_unary(self, method: str, *_args: Any, **_kwargs: Any) -> Any:
        raise NotInProcess(f"{method}: request streams are not offered in-process")

    stream_stream = stream_unary

    def presented(self, metadata: Sequence[tuple[str, Any]] | None) -> Metadata:
        """The caller's metadata, this channel's key, and the trace context (unless the caller
        passes one on, as the gateway does)."""
        pairs: list[tuple[str, Any]] = [*(metadata or ()), *self._key]
        if not any(name == "traceparent" for name, _ in pairs):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            pairs.extend(carrier.items())
        return tuple(pairs)

    def context(self, metadata: Sequence[tuple[str, Any]] | None, timeout: float | None) -> LocalContext:
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        return LocalContext(self.presented(metadata), deadline)

    async def _unary(
        self,
        method: str,
        request: Any,
        *,
        timeout: float | None = None,  # noqa: ASYNC109  # grpc's call option, passed on as a deadline
        metadata: Any = None,
        **options: Any,
    ) -> Any:
        _refuse(method, options)
        handler = (await self._endpoint.handler(method)).unary_unary
        context = self.context(metadata, timeout)
        # a task of its own: the callee's contextvars (its principal) stay its own; cancelling
        # this caller cancels the awaited task, as a cancelled RPC cancels its handler
        served = asyncio.create_task(_served(handler, request, context, self._endpoint.name))
        if timeout is None:
            response, error = await served
        else:
            try:
                async with asyncio.timeout(timeout):
                    response, error = await served
            except TimeoutError:
                raise context.deadline_exceeded() from None
        if error is not None:
            raise error
        return response

    async def channel_ready(self) -> None:
        return None

    async def close(self, grace: float | None = None) -> None:
        return None


async def _served(
    handler: Any, request: Any, context: LocalContext, component: str
) -> tuple[Any, grpc.aio.AioRpcError | None]:
    structlog.contextvars.bind_contextvars(service=component)  # its log lines name it, as in its own process
    try:
        return await handler(request, context), None
    except Exception as exc:
        return None, context.error(exc)


_END = object()


class LocalStream:
    """A server stream called in-process: an async iterator of the callee's messages, then the
    callee's status (AioRpcError when it failed). The callee runs in a task of its own that may
    run `_STREAM_AHEAD` messages ahead of the reader; `cancel()` (or the reader cancelled while it
    waits, or this object dropped) cancels it, as a cancelled RPC does."""

    def __init__(
        self,
        channel: LocalChannel,
        method: str,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        **options: Any,
    ) -> None:
        _refuse(method, options)
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=_STREAM_AHEAD)
        self._error: grpc.aio.AioRpcError | None = None
        self._finished = False
        context = channel.context(metadata, timeout)
        self._task = asyncio.create_task(self._produce(channel, method, request, context, timeout))

    async def _produce(
        self,
        channel: LocalChannel,
        method: str,
        request: Any,
        context: LocalContext,
        timeout: float | None,  # noqa: ASYNC109  # the call's deadline, as asyncio.timeout takes it
    ) -> None:
        structlog.contextvars.bind_contextvars(service=channel._endpoint.name)
        try:
            handler = (await channel._endpoint.handler(method)).unary_stream
            async with asyncio.timeout(timeout), contextlib.aclosing(handler(request, context)) as messages:
                async for message in messages:
                    await self._queue.put(message)
        except TimeoutError:
            self._error = context.deadline_exceeded()
        except NotInProcess:
            raise
        except Exception as exc:
            self._error = context.error(exc)
        await self._queue.put(_END)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        try:
            message = await self._next()
        except asyncio.CancelledError:
            self.cancel()
            raise
        if message is _END:
            self._finished = True
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return message

    async def _next(self) -> Any:
        getting = asyncio.ensure_future(self._queue.get())
        done, _ = await asyncio.wait((getting, self._task), return_when=asyncio.FIRST_COMPLETED)
        if getting in done:
            return getting.result()
        getting.cancel()  # the callee's task ended without its end marker: refused or cancelled
        if self._task.cancelled():
            self._finished = True
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.CANCELLED, grpc.aio.Metadata(), grpc.aio.Metadata(), "Locally cancelled by application!"
            )
        self._task.result()  # raises what refused the call (NotInProcess)
        return await self._queue.get()

    def cancel(self) -> bool:
        if self._task.done():
            return False
        self._task.cancel()
        return True

    def cancelled(self) -> bool:
        return self._task.cancelled()

    def done(self) -> bool:
        return self._task.done()

    def __del__(self) -> None:
        task = getattr(self, "_task", None)
        if task is not None and not task.done() and not task.get_loop().is_closed():
            task.cancel()


# The components this process hosts, by the address each would listen on in the `microservices`
# topology: `client_channel` and the gateway call these directly. Filled only by
# `tierlift serve` (tierlift/combined.py); empty, and so never consulted, in every other process.
_HOSTED: dict[str, LocalEndpoint] = {}


def host(address: str, endpoint: LocalEndpoint) -> None:
    _HOSTED[address] = endpoint


def hosted(address: str) -> LocalEndpoint | None:
    return _HOSTED.get(address) if _HOSTED else None


def hosting() -> bool:
    """Whether this process hosts several components (`tierlift serve`)."""
    return bool(_HOSTED) or _ENABLED[0]


_ENABLED = [False]


def enable() -> None:
    """Called first by `tierlift serve`: components started after it offer themselves in-process."""
    _ENABLED[0] = True


def reset() -> None:
    """For tests."""
    _HOSTED.clear()
    _ENABLED[0] = False


def offer(address: str, name: str, auth: Authenticate | None, add: Callable[[Any, Any], None], servicer: Any) -> None:
    """Where this process hosts several components (`enable`d by `tierlift serve`): `servicer`,
    added by `add` (a generated `add_*Servicer_to_server`), callable in-process at `address`.
    Nothing otherwise."""
    if hosting():
        endpoint = LocalEndpoint(name, auth)
        add(servicer, endpoint)
        host(address, endpoint)
