"""The JetStream bus and the ledger's ingest against a real nats-server and a real SQLite file."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tierlift.core import bus as bus_module
from tierlift.core import migrations
from tierlift.core.bus import EventBus
from tierlift.core.bus_layout import bootstrap
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.core.nats_access import EventSigner, ProducerCheck, TrustedProducer, new_seed, public_key
from tierlift.ledger import EventIngest, LedgerStore, attempt_ingest, make_engine
from tierlift.v1 import common_pb2, events_pb2, router_pb2

CATALOG = load_catalog(DEFAULT_CATALOG)


@pytest.fixture
def store(tmp_path: Path) -> LedgerStore:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrations.upgrade(url)
    return LedgerStore(make_engine(url))


def attempt_event(
    event_id: str, model: str = "gpt-5-mini", tokens: tuple[int, int] = (1000, 500)
) -> events_pb2.AttemptFinished:
    occurred = Timestamp()
    occurred.GetCurrentTime()
    return events_pb2.AttemptFinished(
        event_id=event_id,
        occurred_at=occurred,
        request_id=event_id.split(".")[0],
        tenant="acme",
        workload="faq",
        attempt=router_pb2.Attempt(
            index=0,
            tier=common_pb2.TIER_CLOSED,
            model=model,
            adapter="openai",
            outcome=router_pb2.OUTCOME_ANSWERED,
            usage=common_pb2.Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
        ),
    )


async def ingest_until(bus: EventBus, store: LedgerStore, ingest: EventIngest, rows: int, dead: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume(bus_module.SUBJECT_ATTEMPT, "ledger-attempts", ingest, stop, batch=64))
    try:
        for _ in range(100):
            lines = store.spend("acme", "", None, None)
            if sum(line["attempts"] for line in lines) >= rows and ingest.dead_lettered >= dead:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("ingest did not catch up within 10s")
    finally:
        stop.set()
        await task


async def test_duplicate_event_ids_are_stored_once_by_jetstream(bus: EventBus) -> None:
    for _ in range(3):
        await bus.publish(bus_module.SUBJECT_ATTEMPT, attempt_event("r1.attempt.0"), "r1.attempt.0")
    info = await bus.js.stream_info(bus_module.STREAM)
    assert info.state.messages == 1


async def test_an_empty_fetch_is_nothing_to_write_not_an_error(bus: EventBus, store: LedgerStore) -> None:
    ingest = attempt_ingest(bus, store, CATALOG)
    await ingest([])  # raised IndexError (logged as a failed batch) before
    assert store.spend("", "", None, None) == []


async def test_ledger_prices_exactly_and_counts_a_redelivered_event_once(bus: EventBus, store: LedgerStore) -> None:
    await bus.publish(bus_module.SUBJECT_ATTEMPT, attempt_event("r1.attempt.0"), "r1.attempt.0")
    await bus.publish(bus_module.SUBJECT_ATTEMPT, attempt_event("r2.attempt.0"), "r2.attempt.0")
    # The same event again under another message id (e.g. outside JetStream's de-dup window).
    await bus.publish(bus_module.SUBJECT_ATTEMPT, attempt_event("r1.attempt.0"), "r1.attempt.0-replayed")
    await ingest_until(bus, store, attempt_ingest(bus, store, CATALOG), rows=2, dead=0)

    [line] = store.spend("acme", "", None, None)
    assert line["attempts"] == 2
    # two attempts of 1,000 in at 0.25/M and 500 out at 2.00/M = 2 x 0.00125
    assert line["cost_usd"] == Decimal("0.0025")


async def test_unpriceable_events_go_to_the_dead_letter_subject_with_a_reason(
    bus: EventBus, store: LedgerStore
) -> None:
    await bus.publish(bus_module.SUBJECT_ATTEMPT, attempt_event("r3.attempt.0", model="no-such-model"), "r3.attempt.0")
    await bus.js.publish(bus_module.SUBJECT_ATTEMPT, b"\xff\xffnot protobuf", headers={"Nats-Msg-Id": "junk-1"})
    await bus.publish(bus_module.SUBJECT_ATTEMPT, attempt_event("r4.attempt.0"), "r4.attempt.0")
    ingest = attempt_ingest(bus, store, CATALOG)
    await ingest_until(bus, store, ingest, rows=1, dead=2)

    assert ingest.dead_lettered == 2
    dead = await bus.js.pull_subscribe("tierlift.deadletter.>", durable="dl-reader", stream=bus_module.STREAM)
    reasons = sorted(m.headers["Tierlift-Reason"] for m in await dead.fetch(2, timeout=5))
    assert reasons[0].startswith("attempt.model: 'no-such-model' is not in catalog")
    assert reasons[1].startswith("payload: cannot be parsed as AttemptFinished")


async def test_events_no_trusted_router_signed_are_dead_lettered_with_the_reason(
    nats_url: str, store: LedgerStore
) -> None:
    """What a bus without NATS permissions would let in: the ledger stores only what a trusted
    router signed (core/nats_access.py)."""
    router_seed, stranger_seed = new_seed(), new_seed()
    router = await EventBus.connect(nats_url, name="router", seed="")
    router.signer = EventSigner(router_seed)  # a plain server: sign without authenticating
    stranger = await EventBus.connect(nats_url, name="stranger")
    stranger.signer = EventSigner(stranger_seed)
    unsigned = await EventBus.connect(nats_url, name="unsigned")
    ledger = await EventBus.connect(nats_url, name="ledger")
    try:
        await bootstrap(ledger.js)
        ledger.trust(ProducerCheck([TrustedProducer("router", public_key(router_seed))]))
        await router.publish(bus_module.SUBJECT_ATTEMPT, attempt_event("r1.attempt.0"), "r1.attempt.0")
        await stranger.publish(bus_module.SUBJECT_ATTEMPT, attempt_event("r2.attempt.0", tokens=(4 * 10**9, 0)), "r2")
        await unsigned.publish(bus_module.SUBJECT_ATTEMPT, attempt_event("r3.attempt.0"), "r3.attempt.0")
        # a router's signature on other bytes: the payload was changed on the way
        forged = attempt_event("r4.attempt.0", tokens=(10**6, 10**6))
        headers = EventSigner(router_seed).headers(
            bus_module.SUBJECT_ATTEMPT, attempt_event("r4.attempt.0").SerializeToString()
        )
        await unsigned.js.publish(
            bus_module.SUBJECT_ATTEMPT, forged.SerializeToString(), headers={"Nats-Msg-Id": "r4", **headers}
        )
        ingest = attempt_ingest(ledger, store, CATALOG)
        await ingest_until(ledger, store, ingest, rows=1, dead=3)

        [line] = store.spend("acme", "", None, None)
        assert line["attempts"] == 1 and line["cost_usd"] == Decimal("0.00125")
        dead = await ledger.js.pull_subscribe("tierlift.deadletter.>", durable="dl-reader", stream=bus_module.STREAM)
        reasons = sorted(m.headers["Tierlift-Reason"] for m in await dead.fetch(3, timeout=5))
        assert reasons[0] == "event is not signed"
        assert reasons[1] == f"producer '{public_key(stranger_seed)}' is not a trusted producer"
        assert reasons[2] == f"signature does not match producer {public_key(router_seed)}"
    finally:
        for bus in (router, stranger, unsigned, ledger):
            await bus.drain()


async def test_a_watched_state_is_followed_only_from_the_role_that_may_say_it(bus: EventBus) -> None:
    """A key state reaching the stream signed by a router (a message carried onto the subject, a
    server without permissions) is dropped by the watch; the ledger's, on the same subject, is
    followed. So is one signed by nobody."""
    router, ledger = new_seed(), new_seed()
    bus.trust(ProducerCheck([TrustedProducer("router", public_key(router)),
                             TrustedProducer("ledger", public_key(ledger))]))  # fmt: skip
    for signer, key_id in ((EventSigner(router), "from-router"), (None, "unsigned"), (EventSigner(ledger), "k1")):
        await EventBus(bus.nc, signer).publish(f"tierlift.keys.state.{key_id}", events_pb2.KeyState(key_id=key_id),
                                               key_id)  # fmt: skip
    seen: list[str] = []

    async def follow(msg: Any) -> None:
        seen.append(events_pb2.KeyState.FromString(msg.data).key_id)

    await bus.watch_latest("tierlift.keys.state.>", follow)
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the refused ones had as long to arrive
    assert seen == ["k1"]
