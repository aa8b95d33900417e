"""Follow the latest message of every subject under a filter (budget, rollout and key states),
through a short-lived push consumer of this service's own.

nats-py's ordered consumer creates its consumer on `$JS.API.CONSUMER.CREATE.<stream>`, a subject
that would let a service create a consumer on any filter, so reading every subject of the
stream could not be refused. This one names its consumer, which puts the filter in the API
subject (`$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`, ADR-42): the server refuses a body
that asks for another filter, and core/nats_access.py grants each role the filters it may read.

The consumer acks nothing and sends idle heartbeats. When a delivery is missed (a consumer
sequence skipped) or the heartbeats stop (NATS restarted, the consumer was removed), a new one
is made, again from the latest state of every subject: the handlers take states, so a state
seen twice changes nothing. An abandoned consumer is removed by the server once nobody listens
(`inactive_threshold`); services are not allowed to delete consumers."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api

from tierlift.core.logging import get_logger

log = get_logger(__name__)
HEARTBEAT_S = 2.0
MISSED_HEARTBEATS = 3
INACTIVE_S = 30.0


class StateWatch:
    def __init__(
        self,
        js: JetStreamContext,
        nc: NatsClient,
        stream: str,
        subjects: str,
        handler: Callable[[Msg], Awaitable[None]],
        deliver: api.DeliverPolicy = api.DeliverPolicy.LAST_PER_SUBJECT,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self._js, self._nc, self._stream, self._subjects = js, nc, stream, subjects
        self._handler, self._deliver, self._heartbeat_s = handler, deliver, heartbeat_s
        self._sub: Subscription | None = None
        self._expected = 1  # the next consumer sequence
        self._heard_at = time.monotonic()
        self._monitor: asyncio.Task[None] | None = None
        self._generation = 0

    async def start(self) -> None:
        """Create the consumer (errors, such as a refused permission, are raised here) and keep it."""
        await self._subscribe()
        self._monitor = asyncio.create_task(self._keep())

    async def _subscribe(self) -> None:
        inbox = self._nc.new_inbox()
        self._generation += 1
        generation = self._generation

        async def on_message(msg: Msg) -> None:
            if generation == self._generation:  # not from a consumer this watch has replaced
                await self._on_message(msg)

        sub = await self._nc.subscribe(inbox, cb=on_message)
        config = api.ConsumerConfig(
            name=f"watch-{secrets.token_hex(8)}",
            filter_subject=self._subjects,
            deliver_subject=inbox,
            deliver_policy=self._deliver,
            ack_policy=api.AckPolicy.NONE,
            idle_heartbeat=self._heartbeat_s,
            inactive_threshold=INACTIVE_S,
            mem_storage=True,
            num_replicas=1,
        )
        try:
            await self._js.add_consumer(self._stream, config=config)
        except BaseException:
            await sub.unsubscribe()
            raise
        old, self._sub = self._sub, sub
        self._expected, self._heard_at = 1, time.monotonic()
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        self._heard_at = time.monotonic()
        if msg.headers and msg.headers.get("Status"):  # an idle heartbeat
            return
        if msg.metadata.sequence.consumer != self._expected:
            self._heard_at = 0.0  # a delivery was missed: the monitor starts over
            return
        self._expected += 1
        try:
            await self._handler(msg)
        except Exception:
            log.exception("state_handler_failed", subject=msg.subject)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            if time.monotonic() - self._heard_at < MISSED_HEARTBEATS * self._heartbeat_s:
                continue
            try:
                await self._subscribe()
                log.info("state_watch_restarted", subjects=self._subjects)
            except Exception as exc:  # NATS away: try again on the next beat
                log.warning("state_watch_restart_failed", subjects=self._subjects, error=repr(exc))

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
