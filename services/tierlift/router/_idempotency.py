"""One execution per (tenant, idempotency key), across every router replica.

The first call with a key claims it (an atomic create in a JetStream key-value bucket) and runs;
calls with the same key meanwhile wait for its answer and receive it; a call after it finished
gets the stored answer replayed, never a second provider call. The same key with a different
request is refused (INVALID_ARGUMENT naming `idempotency_key`). A claim that fails is released,
so a retry runs again; a claim whose router died lapses after its lease and another takes over.
Records expire with the bucket's TTL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Protocol

from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

from tierlift.core.nats_access import EventSigner
from tierlift.core.signed_bucket import SignedBucket
from tierlift.v1 import router_pb2

BUCKET = "TIERLIFT_IDEMPOTENCY"


class IdempotencyConflict(Exception):
    """The key was used before with a different request."""


class WaitedTooLong(Exception):
    """The first call with this key was still running when this caller's deadline came."""


class KeyStore(Protocol):
    async def create(self, key: str, value: bytes) -> bool: ...  # False: the key exists

    async def get(self, key: str) -> tuple[bytes, int] | None: ...  # (value, revision)

    async def update(self, key: str, value: bytes, revision: int) -> bool: ...  # False: changed meanwhile

    async def put(self, key: str, value: bytes) -> None: ...

    async def delete(self, key: str) -> None: ...


class JetStreamKeys:
    """The key-value bucket every router shares."""

    def __init__(self, kv: object) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, signer: EventSigner | None = None) -> JetStreamKeys:
        """The bucket the bus bootstrap made (its TTL: how long an answer is kept for replay),
        its values signed with this router's NATS key when it has one."""
        return cls(await SignedBucket.open(js, BUCKET, signer))

    async def create(self, key: str, value: bytes) -> bool:
        try:
            await self.kv.create(key, value)  # type: ignore[attr-defined]
        except KeyWrongLastSequenceError:
            return False
        return True

    async def get(self, key: str) -> tuple[bytes, int] | None:
        try:
            entry = await self.kv.get(key)  # type: ignore[attr-defined]
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return entry.value or b"", entry.revision

    async def update(self, key: str, value: bytes, revision: int) -> bool:
        try:
            await self.kv.update(key, value, last=revision)  # type: ignore[attr-defined]
        except KeyWrongLastSequenceError:
            return False
        return True

    async def put(self, key: str, value: bytes) -> None:
        await self.kv.put(key, value)  # type: ignore[attr-defined]

    async def delete(self, key: str) -> None:
        with contextlib.suppress(KeyNotFoundError, KeyDeletedError):
            await self.kv.delete(key)  # type: ignore[attr-defined]


class MemoryKeys:
    """The same contract in one process: for a router without NATS (the unit-test harness)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, int]] = {}
        self._revision = 0

    async def create(self, key: str, value: bytes) -> bool:
        if key in self._values:
            return False
        await self.put(key, value)
        return True

    async def get(self, key: str) -> tuple[bytes, int] | None:
        return self._values.get(key)

    async def update(self, key: str, value: bytes, revision: int) -> bool:
        if self._values.get(key, (b"", -1))[1] != revision:
            return False
        await self.put(key, value)
        return True

    async def put(self, key: str, value: bytes) -> None:
        self._revision += 1
        self._values[key] = (value, self._revision)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)


@dataclass(frozen=True)
class Claim:
    key: str  # the bucket key, "" when the request has no idempotency key
    fingerprint: str
    replay: router_pb2.CompleteResponse | None = None  # the first call's answer

    @property
    def owned(self) -> bool:
        return self.replay is None


def fingerprint(request: router_pb2.CompleteRequest) -> str:
    """What makes two requests the same request: everything but the key itself."""
    copy = router_pb2.CompleteRequest()
    copy.CopyFrom(request)
    copy.idempotency_key = ""
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class SingleFlight:
    def __init__(self, store: KeyStore, lease_s: float = 300.0, poll_s: float = 0.05) -> None:
        self.store, self.lease_s, self.poll_s = store, lease_s, poll_s

    async def claim(self, request: router_pb2.CompleteRequest, wait_s: float) -> Claim:
        """Own the key (run the request), or wait up to `wait_s` for the first call's answer."""
        if not request.idempotency_key:
            return Claim("", "")
        key = hashlib.sha256(f"{request.tenant}/{request.idempotency_key}".encode()).hexdigest()
        mine = fingerprint(request)
        running = self._record(mine, time.time() + min(self.lease_s, wait_s))
        give_up = time.monotonic() + wait_s
        while True:
            if await self.store.create(key, running):
                return Claim(key, mine)
            current = await self.store.get(key)
            if current is None:
                continue  # released (or expired) since: try to claim it again
            value, revision = current
            record = json.loads(value)
            if record["fingerprint"] != mine:
                raise IdempotencyConflict("idempotency_key: used before with a different request")
            if record.get("response"):
                reply = router_pb2.CompleteResponse.FromString(base64.b64decode(record["response"]))
                return Claim(key, mine, reply)
            if record["lease_until"] < time.time() and await self.store.update(key, running, revision):
                return Claim(key, mine)  # its router is gone: take over
            if time.monotonic() >= give_up:
                raise WaitedTooLong("idempotency_key: the first call with this key is still running")
            await asyncio.sleep(self.poll_s)

    async def finish(self, claim: Claim, response: router_pb2.CompleteResponse) -> None:
        if claim.key:
            encoded = base64.b64encode(response.SerializeToString()).decode()
            await self.store.put(
                claim.key, json.dumps({"fingerprint": claim.fingerprint, "response": encoded}).encode()
            )

    async def release(self, claim: Claim) -> None:
        if claim.key:
            await self.store.delete(claim.key)

    @staticmethod
    def _record(fingerprint: str, lease_until: float) -> bytes:
        return json.dumps({"fingerprint": fingerprint, "lease_until": lease_until}).encode()
