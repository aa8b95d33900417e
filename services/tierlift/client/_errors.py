"""Typed errors: each carries the gRPC status and, for a bad request, the field at fault."""

from __future__ import annotations

import contextlib

import grpc


class TierliftError(Exception):
    retryable = False

    def __init__(self, code: grpc.StatusCode, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code, self.message, self.retry_after_s = code, message, retry_after_s
        # the server's messages start with the field's name: "params.temperature: 9.0 is outside [0, 2]"
        head = message.split(":", 1)[0]
        self.field = head if ":" in message and " " not in head else ""


class InvalidRequest(TierliftError):
    """INVALID_ARGUMENT: fix the request (`field` says which part); never retried."""


class Unauthenticated(TierliftError):
    """No key, or a key that is unknown, revoked or expired."""


class PermissionDenied(TierliftError):
    """The key may not do this: another tenant or workload, or its role."""


class NotServable(TierliftError):
    """FAILED_PRECONDITION: no model may serve this request (e.g. REGULATED data and LOCAL down)."""


class RateLimited(TierliftError):
    """RESOURCE_EXHAUSTED: a budget or a limit; retried after `retry_after_s` when it is short."""

    retryable = True


class Unavailable(TierliftError):
    """UNAVAILABLE: the router or every rung is down for now; retried with backoff."""

    retryable = True


class DeadlineExceeded(TierliftError):
    """The call's deadline passed."""


_BY_CODE: dict[grpc.StatusCode, type[TierliftError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.FAILED_PRECONDITION: NotServable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_rpc_error(exc: grpc.RpcError) -> TierliftError:
    code = exc.code()
    retry_after = None
    for key, value in exc.trailing_metadata() or ():
        if key == "retry-after":
            with contextlib.suppress(ValueError):
                retry_after = float(value)
    return _BY_CODE.get(code, TierliftError)(code, exc.details() or "", retry_after)
