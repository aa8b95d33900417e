"""A key-value bucket whose values carry their owner's signature.

Only the owning role may put into its bucket (core/nats_access.py), but NATS lets any client name
any reply subject, and JetStream delivers a pulled batch to the reply subject it is given: a role
that fetches from its own durable could have the server deliver those events into another role's
bucket (`$KV.<bucket>.<key>`), past every permission. So each value is signed with the owner's
nkey over the bucket, the key and the value (`EventSigner.seal_value`), and a value that is not
the owner's is removed and read as absent, never used."""

from __future__ import annotations

from typing import Any

from nats.js.errors import KeyNotFoundError

from tierlift.core.bus_layout import open_bucket
from tierlift.core.logging import get_logger
from tierlift.core.nats_access import EventSigner

log = get_logger(__name__)


class SignedBucket:
    """nats-py's KeyValue calls a service uses (get, create, update, put, delete), signed."""

    def __init__(self, kv: Any, name: str, signer: EventSigner) -> None:
        self._kv, self._name, self._signer = kv, name, signer

    @classmethod
    async def open(cls, js: Any, name: str, signer: EventSigner | None) -> Any:
        """The bucket the bootstrap made; signed when this service has a NATS user (`signer`)."""
        kv = await open_bucket(js, name)
        return kv if signer is None else cls(kv, name, signer)

    def _seal(self, key: str, value: bytes) -> bytes:
        return self._signer.seal_value(f"{self._name}.{key}", value)

    async def get(self, key: str) -> Any:
        entry = await self._kv.get(key)
        opened = self._signer.open_value(f"{self._name}.{key}", entry.value or b"")
        if opened is None:
            log.warning("bucket_value_refused", bucket=self._name, key=key[:120], revision=entry.revision)
            await self._kv.delete(key)
            raise KeyNotFoundError
        entry.value = opened
        return entry

    async def create(self, key: str, value: bytes) -> int:
        return int(await self._kv.create(key, self._seal(key, value)))

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        return int(await self._kv.update(key, self._seal(key, value), last=last))

    async def put(self, key: str, value: bytes) -> int:
        return int(await self._kv.put(key, self._seal(key, value)))

    async def delete(self, key: str) -> bool:
        return bool(await self._kv.delete(key))
