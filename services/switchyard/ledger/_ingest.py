"""Turns attempt.finished events into priced ledger rows, batch by batch.

The ledger prices from its own catalog (the source of truth for money); the router's cost
is only a preview. Events that can never be priced go to the dead-letter subject."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry import trace

from switchyard.core import bus as bus_module
from switchyard.core.bus import EventBus, PoisonEvent, Received, consumer_span
from switchyard.core.catalog import Catalog, tier_name
from switchyard.core.logging import get_logger
from switchyard.ledger._store import LedgerStore
from switchyard.v1 import events_pb2, router_pb2

log = get_logger(__name__)
tracer = trace.get_tracer("switchyard.ledger")


def price_attempt(event: events_pb2.AttemptFinished, catalog: Catalog) -> dict[str, Any]:
    """The ledger row for one event; PoisonEvent if it can never be priced."""
    a = event.attempt
    model = catalog.get(a.model)
    if model is None:
        raise PoisonEvent(f"attempt.model: {a.model!r} is not in catalog {catalog.version}")
    if not event.event_id or not event.request_id:
        raise PoisonEvent("event_id and request_id: must be set")
    return {
        "event_id": event.event_id,
        "request_id": event.request_id,
        "attempt_index": a.index,
        "tenant": event.tenant,
        "workload": event.workload,
        "tier": tier_name(a.tier),
        "model": a.model,
        "adapter": a.adapter,
        "outcome": router_pb2.Outcome.Name(a.outcome).removeprefix("OUTCOME_"),
        "input_tokens": a.usage.input_tokens,
        "output_tokens": a.usage.output_tokens,
        "cost_usd": model.cost(a.usage.input_tokens, a.usage.output_tokens),
        "input_usd_per_million": model.price.input_per_million,
        "output_usd_per_million": model.price.output_per_million,
        "price_version": catalog.version,
        "latency_ms": a.latency_ms,
        "confidence": a.confidence,
        "occurred_at": event.occurred_at.ToDatetime(tzinfo=UTC),
        "recorded_at": datetime.now(UTC),
    }


def _parse(received: Received) -> events_pb2.AttemptFinished:
    event = events_pb2.AttemptFinished()
    try:
        event.ParseFromString(received.msg.data)
    except DecodeError as exc:
        raise PoisonEvent(f"payload: not an AttemptFinished message ({exc})") from None
    return event


class AttemptIngest:
    """A batch handler for EventBus.consume: price, dead-letter the unpriceable, commit once."""

    def __init__(self, bus: EventBus, store: LedgerStore, catalog: Catalog) -> None:
        self.bus, self.store, self.catalog = bus, store, catalog
        self.dead_lettered = 0

    async def __call__(self, batch: Sequence[Received]) -> None:
        rows: list[dict[str, Any]] = []
        consumed: list[trace.SpanContext] = []
        for received in batch:
            with consumer_span(received, f"{bus_module.SUBJECT_ATTEMPT} process") as span:
                consumed.append(span.get_span_context())
                try:
                    rows.append(price_attempt(_parse(received), self.catalog))
                    span.set_attribute("messaging.message.id", rows[-1]["event_id"])
                except PoisonEvent as exc:
                    await self.bus.dead_letter(received, str(exc))
                    self.dead_lettered += 1
        # One write per batch: a child of the first event's CONSUMER span, linked to the others.
        parent = trace.set_span_in_context(trace.NonRecordingSpan(consumed[0]))
        links = [trace.Link(c) for c in consumed[1:]]
        with tracer.start_as_current_span("INSERT attempts", context=parent, links=links) as span:
            span.set_attribute("db.system.name", self.store.engine.dialect.name)
            span.set_attribute("db.operation.name", "INSERT")
            span.set_attribute("db.operation.batch.size", len(rows))
            await asyncio.to_thread(self.store.insert_attempts, rows)
        log.debug("attempts_stored", rows=len(rows), batch=len(batch))
