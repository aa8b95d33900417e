"""What authentication adds to a call (`BENCH=auth make bench` -> auth.json): the interceptor's
work for one call, resolving a key against a KeyBook of 10,000 keys, measured in process
(a loopback gRPC round trip would drown it in noise)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import grpc

from tierlift.core.identity import Authenticate, KeyBook, digest, new_key
from tierlift.v1 import events_pb2


class _Details:
    method = "/tierlift.v1.Router/Complete"

    def __init__(self, key: str) -> None:
        self.invocation_metadata = (("authorization", f"Bearer {key}"),)


def bench_auth(keys: int = 10_000, calls: int = 20_000) -> dict[str, object]:
    book = KeyBook()
    tokens = []
    for _ in range(keys):
        key_id, token = new_key()
        book.put(events_pb2.KeyState(key_id=key_id, secret_sha256=digest(token), tenant="acme", role="app"))
        tokens.append(token)
    auth = Authenticate(book, {"*": frozenset({"app"})})
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)

    async def continuation(_details: Any) -> Any:
        return handler

    async def run() -> list[float]:
        timings = []
        for i in range(calls):
            started = time.perf_counter_ns()
            await auth.intercept_service(continuation, _Details(tokens[i % keys]))
            timings.append((time.perf_counter_ns() - started) / 1e6)
        return timings

    timings = sorted(asyncio.run(run()))
    return {
        "keys": keys,
        "calls": calls,
        "p50_ms": round(statistics.median(timings), 4),
        "p99_ms": round(timings[int(len(timings) * 0.99)], 4),
        "note": "interceptor work per call (lookup, SHA-256, constant-time compare, handler wrap), in process",
    }
