"""A durable JetStream pull consumer that hands out batches without a task per message.

nats-py's `PullSubscription.fetch` takes each message from its inbox with
`Subscription.next_msg`, which makes a uuid, a task and a timer per message: on this project's
machine a fetched and acked event cost the ledger ~32 µs of CPU that way, ~9 µs when the
messages are collected as they arrive (`BENCH=ledger`, README "Ledger"). This sends the same
JetStream API request (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`, ADR-13) and collects the
replies in a subscription callback; the messages are nats-py's own `Msg` (ack, metadata and
headers as with `fetch`).

A message that arrives after its request was given up (the client's wait ended first) is kept
for the next fetch, never dropped: it is delivered and waits for its ack like any other. Status
replies (404 no messages, 408 expired) end only the request whose reply subject they carry."""

from __future__ import annotations

import asyncio
import itertools
import json

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from tierlift.core.entry import StartupError

STATUS = "Status"
HEARTBEAT = "100"
NO_MESSAGES, REQUEST_TIMEOUT, CONFLICT = "404", "408", "409"
# 409 is "Exceeded MaxWaiting", "Leadership Change" and the like: the request is over, the next
# one may succeed (nats-py treats it alike)
REQUEST_OVER = frozenset({NO_MESSAGES, REQUEST_TIMEOUT, CONFLICT})


class PullRefused(Exception):
    """JetStream answered a pull request with an error status (e.g. 503: JetStream unavailable)."""


class PullConsumer:
    """Batches from one durable consumer; `fetch` is called by one task at a time."""

    def __init__(self, nc: NatsClient, stream: str, consumer: str) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._tokens = itertools.count()
        self._buffer: list[Msg] = []
        self._wanted = 0  # messages the open request still waits for
        self._token = ""  # the open request's reply subject
        self._over: asyncio.Future[str] | None = None
        self._sub: Subscription | None = None

    @classmethod
    async def bind(cls, js: JetStreamContext, nc: NatsClient, stream: str, durable: str) -> PullConsumer:
        """Binds to the durable consumer the bootstrap made (core/bus_layout.py; a service may
        not create one) and subscribes to its replies."""
        try:
            await js.consumer_info(stream, durable)
        except NotFoundError:
            raise StartupError(f"durable consumer {durable} does not exist: run `tierlift bus-bootstrap`") from None
        consumer = cls(nc, stream, durable)
        consumer._sub = await nc.subscribe(f"{consumer._inbox}.*", cb=consumer._on_reply)
        return consumer

    async def fetch(self, batch: int, wait_s: float) -> list[Msg]:
        """Up to `batch` messages: those waiting now, or else the first to arrive within
        `wait_s` ([] when none does)."""
        if len(self._buffer) < batch:
            await self._request(batch - len(self._buffer), wait_s, no_wait=True)
        if not self._buffer:
            expires_ns = max(int(wait_s * 1e9) - 100_000, 1_000_000)  # the server gives up first
            await self._request(1, wait_s + 0.05, expires=expires_ns)
        msgs, self._buffer = self._buffer, []
        return msgs

    async def _request(self, batch: int, wait_s: float, **options: object) -> None:
        """One pull request; returns when it is fulfilled or over, or after `wait_s`."""
        self._token = f"{self._inbox}.{next(self._tokens)}"
        self._wanted = batch
        self._over = asyncio.get_running_loop().create_future()
        try:
            request = json.dumps({"batch": batch, **options}).encode()
            await self._nc.publish(self._next, request, reply=self._token)
            status = await asyncio.wait_for(self._over, wait_s)
        except TimeoutError:
            return  # no answer in time (a reconnect, a slow server): take what came
        finally:
            self._token, self._wanted, self._over = "", 0, None
        if status and status not in REQUEST_OVER:
            raise PullRefused(status)

    async def _on_reply(self, msg: Msg) -> None:
        status = msg.headers.get(STATUS) if msg.headers else None
        if status is None:  # a message (its subject is the event's, not the request's)
            self._buffer.append(msg)
            self._wanted -= 1
            if self._wanted == 0:
                self._end("")
        elif status != HEARTBEAT and msg.subject == self._token:
            description = msg.headers.get("Description", "") if msg.headers else ""
            self._end(status if status in REQUEST_OVER else f"{status} {description}".strip())

    def _end(self, status: str) -> None:
        if self._over is not None and not self._over.done():
            self._over.set_result(status)

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
