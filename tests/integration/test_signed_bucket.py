"""A role's key-value values carry its signature: a value anyone else had put into its bucket
(NATS lets a client name any reply subject, and JetStream delivers a pulled batch there, so a
role can have its durable's events delivered into another role's bucket) is refused, removed and
read as absent; the owner's own values round-trip, compare-and-set included."""

from __future__ import annotations

import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from tierlift.core.bus import EventBus
from tierlift.core.nats_access import EventSigner, new_seed
from tierlift.core.signed_bucket import SignedBucket
from tierlift.router._idempotency import BUCKET, JetStreamKeys


async def test_a_value_the_owner_did_not_sign_is_refused_and_removed(bus: EventBus) -> None:
    owner = EventSigner(new_seed())
    bucket = await SignedBucket.open(bus.js, BUCKET, owner)
    raw = await bus.js.key_value(BUCKET)

    revision = await bucket.create("k1", b"mine")
    assert (await bucket.get("k1")).value == b"mine"
    await bucket.update("k1", b"mine, again", last=revision)
    assert (await bucket.get("k1")).value == b"mine, again"
    with pytest.raises(KeyWrongLastSequenceError):
        await bucket.update("k1", b"stale", last=revision)

    await raw.put("k2", b"delivered here by another role")  # as a forged reply subject would
    await raw.put("k3", EventSigner(new_seed()).seal_value(f"{BUCKET}.k3", b"signed, by someone else"))
    await raw.put("k4", owner.seal_value(f"{BUCKET}.k1", b"the owner's, for another key"))
    for key in ("k2", "k3", "k4"):
        with pytest.raises(KeyNotFoundError):
            await bucket.get(key)
        await bucket.create(key, b"the owner's own")  # the refused value is gone: the key is free again
        assert (await bucket.get(key)).value == b"the owner's own"


async def test_the_idempotency_store_reads_a_foreign_value_as_absent(bus: EventBus) -> None:
    keys = await JetStreamKeys.open(bus.js, EventSigner(new_seed()))
    raw = await bus.js.key_value(BUCKET)
    await raw.put("order-7", b'{"response": "forged"}')
    assert await keys.get("order-7") is None
    assert await keys.create("order-7", b"claimed")
