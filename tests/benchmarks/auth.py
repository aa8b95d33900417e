"""What authentication adds to a call (`BENCH=auth make bench` -> auth.json): admitting one
call (`Authenticate.admit`, as `ServerCalls` does on every call), resolving a key against a
KeyBook of 10,000 keys, measured in process (a loopback gRPC round trip would drown it in noise)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from tierlift.core.identity import Authenticate, KeyBook, digest, new_key
from tierlift.v1 import events_pb2

METHOD = "/tierlift.v1.Router/Complete"


class _Context:
    """What `admit` reads of a call's context."""

    def __init__(self, key: str) -> None:
        self.metadata = (("authorization", f"Bearer {key}"),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"refused: {code} {details}")


def bench_auth(keys: int = 10_000, calls: int = 20_000) -> dict[str, object]:
    book = KeyBook()
    tokens = []
    for _ in range(keys):
        key_id, token = new_key()
        book.put(events_pb2.KeyState(key_id=key_id, secret_sha256=digest(token), tenant="acme", role="app"))
        tokens.append(token)
    auth = Authenticate(book, {"*": frozenset({"app"})})

    async def run() -> list[float]:
        timings = []
        for i in range(calls):
            started = time.perf_counter_ns()
            await auth.admit(METHOD, _Context(tokens[i % keys]))  # type: ignore[arg-type]
            timings.append((time.perf_counter_ns() - started) / 1e6)
        return timings

    timings = sorted(asyncio.run(run()))
    return {
        "keys": keys,
        "calls": calls,
        "p50_ms": round(statistics.median(timings), 4),
        "p99_ms": round(timings[int(len(timings) * 0.99)], 4),
        "note": "admitting one call (lookup, SHA-256, constant-time compare), in process",
    }
