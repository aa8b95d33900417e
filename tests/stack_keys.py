"""API keys for the tests' tenants on a running stack: app keys created on demand with the
stack's admin key, and a router channel that presents the key of each request's tenant."""

from __future__ import annotations

import time
from typing import Any

import grpc

from tierlift.core.identity import add_bearer
from tierlift.devstack import Stack, plain_or_tls_channel
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc


def app_key(stack: Stack, tenant: str) -> str:
    """An app key of `tenant`, created once per stack; returns when the router accepts it."""
    cached = f"app:{tenant}"
    if cached not in stack.keys:
        with stack.channel("ledger") as channel:
            created = ledger_pb2_grpc.LedgerStub(channel).CreateKey(
                ledger_pb2.KeyRequest(tenant=tenant, role="app", description="test"), timeout=10
            )
        stack.keys[cached] = created.secret
        wait_until_router_knows(stack, created.secret, tenant)
    return stack.keys[cached]


def wait_until_router_knows(stack: Stack, key: str, tenant: str) -> None:
    """A key reaches the routers through JetStream: wait until the router takes it (any answer but
    UNAUTHENTICATED), rather than sleep a guess."""
    probe = router_pb2.CompleteRequest(
        tenant=tenant, workload="probe", messages=[common_pb2.Message(role="user", content="hi")]
    )
    deadline = time.monotonic() + 10
    with stack.channel("router", key) as channel:
        while True:
            try:
                router_pb2_grpc.RouterStub(channel).Plan(probe, timeout=10)
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAUTHENTICATED or time.monotonic() > deadline:  # type: ignore[attr-defined]
                    return


class _KeyOfTenant(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def _call(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(add_bearer(details, app_key(self.stack, request.tenant)), request)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._call(continuation, details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._call(continuation, details, request)


def tenant_router(stack: Stack) -> grpc.Channel:
    """A blocking router channel that presents, on each call, the app key of the request's tenant."""
    return grpc.intercept_channel(plain_or_tls_channel(stack.addrs["router"], stack.tls), _KeyOfTenant(stack))
