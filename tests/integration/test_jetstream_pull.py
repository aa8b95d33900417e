"""The ledger's pull consumer against a real nats-server: batches, waiting for the first
message, redelivery of what was not acked, messages that outlive their request, refusals."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

import pytest
from nats.js import api

from tierlift.core import bus as bus_module
from tierlift.core.bus import EventBus
from tierlift.core.jetstream_pull import PullConsumer, PullRefused

SUBJECT = bus_module.SUBJECT_ATTEMPT


async def consumer(bus: EventBus, ack_wait_s: float = 30.0) -> PullConsumer:
    config = api.ConsumerConfig(durable_name="pull-test", ack_policy=api.AckPolicy.EXPLICIT, ack_wait=ack_wait_s,
                                filter_subject=SUBJECT)  # fmt: skip
    await bus.js.add_consumer(bus_module.STREAM, config=config)
    return await PullConsumer.bind(bus.js, bus.nc, bus_module.STREAM, "pull-test")


async def publish(bus: EventBus, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        await bus.js.publish(SUBJECT, f"event {i}".encode(), headers={"Nats-Msg-Id": f"e{i}"})


async def test_a_fetch_takes_what_waits_up_to_the_batch_and_acked_messages_do_not_return(bus: EventBus) -> None:
    await publish(bus, 10)
    pull = await consumer(bus)
    first = await pull.fetch(4, wait_s=1.0)
    rest = await pull.fetch(100, wait_s=1.0)  # the six left, at once: not the timeout
    assert [m.data for m in first + rest] == [f"event {i}".encode() for i in range(10)]
    assert {m.subject for m in first + rest} == {SUBJECT}  # the event's subject, as from nats-py's fetch
    for m in first + rest:
        await m.ack()
    started = time.perf_counter()
    assert await pull.fetch(100, wait_s=0.3) == []
    assert time.perf_counter() - started >= 0.25  # it waited for a first message, then gave up
    await pull.close()


async def test_a_waiting_fetch_returns_the_first_message_to_arrive(bus: EventBus) -> None:
    pull = await consumer(bus)
    waiting = asyncio.create_task(pull.fetch(64, wait_s=10.0))
    await asyncio.sleep(0.2)
    await publish(bus, 1)
    msgs = await asyncio.wait_for(waiting, 5.0)  # a timeout against a hang, not a timing assertion
    assert [m.data for m in msgs] == [b"event 0"]
    assert msgs[0].metadata.sequence.stream == 1


async def test_a_message_not_acked_is_delivered_again(bus: EventBus) -> None:
    await publish(bus, 2)
    pull = await consumer(bus, ack_wait_s=1.0)
    [first, second] = await pull.fetch(10, wait_s=1.0)
    await second.ack()
    again = await pull.fetch(10, wait_s=3.0)  # first comes back once its ack wait is over
    assert [m.data for m in again] == [first.data]
    assert again[0].metadata.num_delivered == 2


async def test_a_message_that_outlives_its_request_is_kept_for_the_next_fetch(bus: EventBus) -> None:
    """A pull request the client gave up on may still be open on the server, which then delivers
    to it: those messages must be handed out, not dropped (they would wait out their ack time)."""
    pull = await consumer(bus)
    # a request as left behind by a wait that ended first: open for 5 s, answered to our inbox
    request = json.dumps({"batch": 1, "expires": 5_000_000_000}).encode()
    await bus.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{bus_module.STREAM}.pull-test", request,
                         reply=f"{pull._inbox}.given-up")  # fmt: skip
    await bus.nc.flush()
    await publish(bus, 1)
    await asyncio.sleep(0.2)
    msgs = await pull.fetch(10, wait_s=1.0)
    assert [m.data for m in msgs] == [b"event 0"]


async def test_a_consumer_that_is_gone_is_refused_not_waited_for(bus: EventBus) -> None:
    pull = await consumer(bus)
    await bus.js.delete_consumer(bus_module.STREAM, "pull-test")
    with pytest.raises(PullRefused, match="503"):
        await pull.fetch(10, wait_s=2.0)


async def test_consume_hands_batches_to_the_handler_and_acks_them(bus: EventBus) -> None:
    await publish(bus, 300)
    seen: list[bytes] = []

    async def handler(batch: Sequence[bus_module.Received]) -> None:
        seen.extend(r.msg.data for r in batch)

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume(SUBJECT, "ledger-attempts", handler, stop, batch=128, overlap=True))
    for _ in range(100):
        if len(seen) >= 300:
            break
        await asyncio.sleep(0.05)
    for _ in range(100):  # acks are sent after the handler returns
        info = await bus.js.consumer_info(bus_module.STREAM, "ledger-attempts")
        if info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert sorted(seen) == sorted(f"event {i}".encode() for i in range(300))
    assert (info.num_pending, info.num_ack_pending, info.delivered.stream_seq) == (0, 0, 300)
