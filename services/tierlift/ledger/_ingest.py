"""Turns JetStream events into ledger rows, batch by batch: each event gets a CONSUMER span,
events that can never be stored go to the dead-letter subject with the reason, and the batch
is written in one transaction before anything is acked (EventBus.consume acks after us).

The ledger prices attempts from its own catalog (the source of truth for money); the
router's cost is only a preview."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import metrics, trace
from sqlalchemy import Table

from tierlift.core import bus as bus_module
from tierlift.core.bus import EventBus, PoisonEvent, Received, consumer_span
from tierlift.core.catalog import TIERS, Catalog, tier_name
from tierlift.core.logging import get_logger
from tierlift.core.money import usd
from tierlift.core.pricing import UsageCost
from tierlift.ledger import _metrics
from tierlift.ledger._schema import MAX_ROW_USD, attempts, attempts_started, misfit, requests
from tierlift.ledger._store import LedgerStore
from tierlift.v1 import common_pb2, events_pb2, router_pb2

log = get_logger(__name__)
MAX_TOKENS = 2**31 - 1  # the token columns are 32-bit integers on PostgreSQL
tracer = trace.get_tracer("tierlift.ledger")
dead_letters = metrics.get_meter("tierlift.ledger").create_counter(
    "tierlift.ledger.dead_lettered", description="Events sent to the dead-letter subject, by subject"
)
Event = TypeVar("Event", bound=ProtoMessage)


def parse(cls: type[Event], data: bytes, required: tuple[str, ...] = ("event_id", "request_id")) -> Event:
    event = cls()
    try:
        event.ParseFromString(data)
    except DecodeError as exc:
        raise PoisonEvent(f"payload: cannot be parsed as {cls.__name__} ({exc})") from None
    if not all(getattr(event, name, "") for name in required):
        raise PoisonEvent(f"{' and '.join(required)}: must be set")
    return event


def settled_row(data: bytes, catalog: Catalog) -> dict[str, Any]:
    """An answered request and its answering attempt(s), priced as if each had come alone."""
    event = parse(events_pb2.RequestSettled, data, required=())
    done = event.completed
    if not (done.event_id and done.request_id):
        raise PoisonEvent("completed.event_id and completed.request_id: must be set")
    if not event.attempts:
        raise PoisonEvent("attempts: must hold the answering attempt")
    for i, a in enumerate(event.attempts):
        if not a.event_id or (a.request_id, a.tenant, a.workload) != (done.request_id, done.tenant, done.workload):
            raise PoisonEvent(f"attempts[{i}]: needs an event_id and the request id, tenant and workload of completed")
    return {
        "event_id": done.event_id,
        "attempts": [price_attempt(a, catalog) for a in event.attempts],
        "request": request_row(done),
    }


def price_attempt(event: events_pb2.AttemptFinished, catalog: Catalog) -> dict[str, Any]:
    """The ledger row for one attempt; PoisonEvent if it can never be priced."""
    a = event.attempt
    model = catalog.get(a.model)
    if model is None:
        raise PoisonEvent(f"attempt.model: {a.model!r} is not in catalog {catalog.version}")
    for field, tokens in a.usage.ListFields():
        if tokens > MAX_TOKENS:
            raise PoisonEvent(f"attempt.usage.{field.name}: {tokens} is over {MAX_TOKENS:,}, more than any model takes")
    if event.kind not in ("", "shadow", "judge"):
        raise PoisonEvent(f"kind: {event.kind[:32]!r} is not '' (live), 'shadow' or 'judge'")
    priced = model.usage_cost(a.usage)
    cost = priced.total
    if cost > MAX_ROW_USD:
        raise PoisonEvent(f"attempt cost {cost} USD is over the {MAX_ROW_USD:.0f} USD one attempt row holds")
    return fitted(attempts, {
        "event_id": event.event_id,
        "request_id": event.request_id,
        "attempt_index": a.index,
        "tenant": event.tenant,
        "workload": event.workload,
        "tier": _named(tier_name, a.tier, "attempt.tier"),
        "model": a.model,
        "adapter": a.adapter,
        "outcome": _named(router_pb2.Outcome.Name, a.outcome, "attempt.outcome").removeprefix("OUTCOME_"),
        "input_tokens": a.usage.input_tokens,
        "output_tokens": a.usage.output_tokens,
        "cost_usd": cost,
        "input_usd_per_million": model.price.input_per_million,
        "output_usd_per_million": model.price.output_per_million,
        "price_version": catalog.version,
        # not finite (a broken producer) is stored as 0: NaN failed the whole batch on SQLite
        # (NOT NULL), again at every redelivery
        "latency_ms": _finite(a.latency_ms),
        "confidence": _finite(a.confidence),
        "occurred_at": occurred_at(event),
        "recorded_at": datetime.now(UTC),
        "kind": event.kind or "live",
        "estimated": a.usage_estimated,
        "reason": free_text(a.reason, 512),
        "error": free_text(a.error, 512),
        **_signals(a),
        **_kinds(priced),
    })  # fmt: skip


def usage_report_row(data: bytes, catalog: Catalog) -> dict[str, Any]:
    """The attempt row an `AttemptUsage` report makes: the attempt as first published, priced from
    the provider's usage. `LedgerStore.correct_attempts` puts it in place of an estimated row."""
    event = parse(events_pb2.AttemptUsage, data, required=("event_id",))
    if not (event.attempt.event_id and event.attempt.request_id):
        raise PoisonEvent("attempt.event_id and attempt.request_id: must be set")
    if event.attempt.attempt.usage_estimated:
        raise PoisonEvent("attempt.attempt.usage_estimated: a usage report carries the provider's usage")
    return price_attempt(event.attempt, catalog)


def started_row(data: bytes, catalog: Catalog) -> dict[str, Any]:
    """The `attempts_started` row of an `AttemptStarted`: its attempt checked now (one that could
    never be priced is a PoisonEvent here, not when it falls due) and kept to bill if no outcome
    comes."""
    event = parse(events_pb2.AttemptStarted, data, required=("event_id",))
    finished = event.attempt
    if not (finished.event_id and finished.request_id):
        raise PoisonEvent("attempt.event_id and attempt.request_id: must be set")
    price_attempt(finished, catalog)
    return fitted(attempts_started, {
        "event_id": finished.event_id,
        "request_id": finished.request_id,
        "settle_after": timestamp(event.settle_after, "settle_after"),
        "payload": base64.b64encode(finished.SerializeToString()).decode(),
    })  # fmt: skip


def unsettled_row(payload: str, catalog: Catalog) -> dict[str, Any]:
    """The attempt row a started call with no outcome is billed as: its worst case, `unsettled`."""
    finished = events_pb2.AttemptFinished.FromString(base64.b64decode(payload))
    return price_attempt(finished, catalog) | {"unsettled": True}


def settle_started(
    store: LedgerStore, catalog: Catalog, cutoff: datetime, batch: int = 1000
) -> tuple[int, set[tuple[str, str]]]:
    """Close every started call whose deadline passed before `cutoff`, `batch` at a time (each its
    own transaction): those with an outcome stored are done; the others are billed at their
    worst case, `unsettled` (their outcome, if it ever comes, replaces it:
    LedgerStore._settle_late). All of them, not one batch a round: a ledger taking more calls
    than a batch each round would fall further behind, and bill a dead router's calls later and
    later. Returns how many were billed so, and the (tenant, workload) pairs whose spend grew.
    Blocking (a worker thread)."""
    billed, grew = 0, set[tuple[str, str]]()
    while True:
        due = store.due_started(cutoff, batch)
        missing = store.unsettled_due([d["event_id"] for d in due])
        rows = []
        for d in due:
            if d["event_id"] in missing:
                try:
                    rows.append(unsettled_row(d["payload"], catalog))
                except Exception as exc:  # checked at ingest; a catalog that lost its model since
                    log.error("unsettled_attempt_unpriceable", event_id=d["event_id"], error=repr(exc))
        grew |= store.settle_started([d["event_id"] for d in due], rows)
        billed += len(rows)
        if len(due) < batch:  # each round deletes what it read: the calls due run out
            return billed, grew


def _kinds(priced: UsageCost) -> dict[str, Any]:
    """The attempt's token kinds (as `pricing.split` caps them: the kinds never add up to more
    than the tokens) and the cost of each kind reported apart."""
    t, by_kind = priced.tokens, priced.by_kind
    return {
        "cache_read_input_tokens": t.cache_read,
        "cache_write_input_tokens": t.cache_write_5m + t.cache_write_1h,
        "cache_write_1h_input_tokens": t.cache_write_1h,
        "image_input_tokens": t.image_input,
        "audio_input_tokens": t.audio_input,
        "reasoning_output_tokens": t.reasoning,
        "cache_read_cost_usd": by_kind["cache_read"],
        "cache_write_cost_usd": by_kind["cache_write_5m"] + by_kind["cache_write_1h"],
        "image_input_cost_usd": by_kind["image_input"],
        "audio_input_cost_usd": by_kind["audio_input"],
        "reasoning_cost_usd": by_kind["reasoning"],
    }


def free_text(value: str, limit: int) -> str:
    """A story (a provider's error, an audit detail, a comment, an alert's reason) for a column of
    `limit` characters: cut to it, and each NUL (which PostgreSQL's text cannot hold) shown as
    U+FFFD. Ids and names stay strict (`fitted` refuses them), but a row must not be lost over its
    story: a request whose provider answered an error holding NUL was dead-lettered, and with a
    settled request its attempts' cost."""
    return value[:limit].replace("\x00", "\ufffd")


def fitted(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """`row`, or a PoisonEvent naming the field that does not fit `table` (`_schema.misfit`)."""
    if problem := misfit(table, row):
        raise PoisonEvent(problem)
    return row


def occurred_at(event: Any) -> datetime:
    """The event's `occurred_at`; one that protobuf cannot turn into a time is a PoisonEvent."""
    return timestamp(event.occurred_at, "occurred_at")


def timestamp(value: Timestamp, field: str) -> datetime:
    """A protobuf Timestamp as a time; one outside what a datetime holds is a PoisonEvent."""
    try:
        when: datetime = value.ToDatetime(tzinfo=UTC)
    except ValueError as exc:
        raise PoisonEvent(f"{field}: {exc}") from None
    return when


def _named(name: Callable[[int], str], value: int, field: str) -> str:
    """An enum value's name; an unknown value (a newer or broken producer) is a PoisonEvent."""
    try:
        return name(value)
    except ValueError:
        raise PoisonEvent(f"{field}: {value} is not a known value") from None


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _signals(a: router_pb2.Attempt) -> dict[str, Any]:
    """The confidence inputs, kept for calibration; a value that is not a finite number (a
    hostile or broken producer) is stored as 0, never allowed to fail the batch."""
    s = a.signals
    return {"has_logprobs": s.has_logprobs and math.isfinite(s.mean_logprob), "mean_logprob": _finite(s.mean_logprob),
            "min_logprob": _finite(s.min_logprob), "low_prob_share": _finite(s.low_prob_token_share),
            "signal_tokens": min(s.token_count, 2**31 - 1), "prior": _finite(a.prior)}  # fmt: skip


def request_row(event: events_pb2.RequestCompleted) -> dict[str, Any]:
    try:
        total = usd(event.total_cost_usd or "0")
    except ValueError:
        raise PoisonEvent(f"total_cost_usd: {event.total_cost_usd!r} is not a decimal amount") from None
    if not 0 <= total <= MAX_ROW_USD:
        raise PoisonEvent(f"total_cost_usd: {total} is outside [0, {MAX_ROW_USD:.0f}] USD")
    return fitted(requests, {
        "request_id": event.request_id,
        "event_id": event.event_id,
        "tenant": event.tenant,
        "workload": event.workload,
        "answered": event.answered,
        "final_tier": _named(tier_name, event.final_tier, "final_tier") if event.answered else "",
        "final_model": event.final_model,
        "attempt_count": event.attempt_count,
        "escalated": event.escalated,
        "total_cost_usd": total,
        "occurred_at": occurred_at(event),
        "error": free_text(event.error, 1024),
        "prompt_sha256": event.prompt_sha256[:64],
        "regenerated": False,
        "rollout_id": event.rollout_id[:64],
        "arm": event.arm[:16],
        "prompt_form": _form(event.prompt_form),
        **why(event),
    })  # fmt: skip


MAX_REASON = 256  # characters kept of one reason (and of a model id beside it)
MAX_REASONS = 8_000  # characters of reasons and model ids kept per request, in all
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def why(event: events_pb2.RequestCompleted) -> dict[str, str]:
    """Where the request went and why, for its row: the data class the plan applied (its enum name
    without the prefix; "" for UNSPECIFIED, an unknown value is a PoisonEvent, as a tier is), the
    plan's reasons, exclusions and rungs as JSON, and the trace id. The reasons are the router's
    own words (never prompt text), each cut to MAX_REASON characters; entries past MAX_REASONS
    characters in all are left out and counted (`cut`). A trace id that is not 32 hex digits (or
    is all zeros, which W3C calls invalid) is stored as "": a link, not worth the request's row."""
    data_class = _named(common_pb2.DataClass.Name, event.data_class, "data_class").removeprefix("DATA_CLASS_")
    budget, cut = MAX_REASONS, 0

    def kept(*texts: str) -> list[str] | None:
        nonlocal budget, cut
        parts = [free_text(t, MAX_REASON) for t in texts]
        size = sum(len(p) for p in parts)
        if size > budget:
            cut += 1
            return None
        budget -= size
        return parts

    plan = [p[0] for r in event.reasons if (p := kept(r))]
    tiers = set(TIERS.values())
    ladder = [[tier_name(rung.tier) if rung.tier in tiers else "", *p]
              for rung in event.ladder if (p := kept(rung.model, rung.reason))]  # fmt: skip
    excluded = [p for x in event.excluded if (p := kept(x.model, x.reason))]
    reasons = ""
    if plan or ladder or excluded or cut:
        reasons = json.dumps({"plan": plan, "ladder": ladder, "excluded": excluded, "cut": cut}, separators=(",", ":"))
    trace_id = event.trace_id.lower()
    if not _TRACE_ID.match(trace_id) or trace_id == "0" * 32:
        trace_id = ""
    return {"data_class": "" if data_class == "UNSPECIFIED" else data_class, "reasons": reasons, "trace_id": trace_id}


MAX_FORM = 64  # features kept per request


def _form(values: Sequence[float]) -> str:
    """The prompt's form features as JSON; "" when absent, too many, or not finite numbers (a
    broken producer must not fail the batch: the request row matters more than its features)."""
    if not values or len(values) > MAX_FORM or not all(math.isfinite(v) for v in values):
        return ""
    return json.dumps([round(v, 4) for v in values], separators=(",", ":"))


class EventIngest:
    """A batch handler for EventBus.consume (with `overlap`): the producers' signatures are checked
    (a large batch in a helper process), events turned into rows on the event loop, then written in
    a worker thread, one batch's write at a time."""

    def __init__(
        self,
        bus: EventBus,
        subject: str,
        table: str,
        to_row: Callable[[bytes], dict[str, Any]],
        write: Callable[[list[dict[str, Any]]], Any],
        after_write: Callable[[Any], Awaitable[None]] | None = None,
        counted: bool = True,
    ) -> None:
        self.bus, self.subject, self.table = bus, subject, table
        self.to_row, self.write, self.after_write = to_row, write, after_write
        self.counted = counted  # whether the rows' cost goes to the spend counter (`_metrics`)
        self.dead_lettered = 0
        self._writing = asyncio.Lock()

    async def __call__(self, batch: Sequence[Received]) -> None:
        if not batch:
            return
        problems = await self.bus.producer_problems(batch)
        rows: list[dict[str, Any]] = []
        consumed: list[trace.SpanContext] = []
        for received, problem in zip(batch, problems, strict=True):
            with consumer_span(received, f"{self.subject} process") as span:
                consumed.append(span.get_span_context())
                try:
                    if problem:
                        raise PoisonEvent(problem)
                    rows.append(self.to_row(received.msg.data))
                    span.set_attribute("messaging.message.id", rows[-1]["event_id"])
                except Exception as exc:
                    # Making a row is pure (parse, check, price): whatever fails there is about
                    # this event, and raising would fail its whole batch at every redelivery.
                    if not isinstance(exc, PoisonEvent):
                        log.warning("event_unreadable", subject=self.subject, error=repr(exc))
                    reason = str(exc) if isinstance(exc, PoisonEvent) else f"cannot be made a row: {exc!r}"[:512]
                    await self.bus.dead_letter(received, reason)
                    self.dead_lettered += 1
                    dead_letters.add(1, {"messaging.destination.name": self.subject})
        # One write per batch: a child of the first event's CONSUMER span, linked to the others.
        parent = trace.set_span_in_context(trace.NonRecordingSpan(consumed[0]))
        links = [trace.Link(c) for c in consumed[1:]]
        async with self._writing:
            with tracer.start_as_current_span(f"INSERT {self.table}", context=parent, links=links) as span:
                span.set_attribute("db.operation.name", "INSERT")
                span.set_attribute("db.operation.batch.size", len(rows))
                result = await asyncio.to_thread(self.write, rows)
            if self.counted:
                _metrics.record_rows(rows)
            if self.after_write is not None:
                await self.after_write(result)
        log.debug("events_stored", subject=self.subject, rows=len(rows), batch=len(batch))


def attempt_ingest(
    bus: EventBus,
    store: LedgerStore,
    catalog: Catalog,
    after_write: Callable[[set[tuple[str, str]]], Awaitable[None]] | None = None,
) -> EventIngest:
    return EventIngest(
        bus,
        bus_module.SUBJECT_ATTEMPT,
        "attempts",
        lambda data: price_attempt(parse(events_pb2.AttemptFinished, data), catalog),
        store.insert_attempts,
        after_write,
    )


def usage_report_ingest(
    bus: EventBus,
    store: LedgerStore,
    catalog: Catalog,
    after_write: Callable[[set[tuple[str, str]]], Awaitable[None]] | None = None,
) -> EventIngest:
    return EventIngest(
        bus,
        bus_module.SUBJECT_ATTEMPT_USAGE,
        "attempts",
        lambda data: usage_report_row(data, catalog),
        store.correct_attempts,
        after_write,
        # a report replaces an estimate already counted: counting it again would count the
        # attempt twice (the counter keeps the estimate; the tables hold the reported amount)
        counted=False,
    )


def started_ingest(bus: EventBus, store: LedgerStore, catalog: Catalog) -> EventIngest:
    return EventIngest(
        bus,
        bus_module.SUBJECT_ATTEMPT_STARTED,
        "attempts_started",
        lambda data: started_row(data, catalog),
        store.insert_started,
        counted=False,  # nothing is billed until the call's deadline passes without an outcome
    )


def request_ingest(bus: EventBus, store: LedgerStore) -> EventIngest:
    return EventIngest(
        bus,
        bus_module.SUBJECT_COMPLETED,
        "requests",
        lambda data: request_row(parse(events_pb2.RequestCompleted, data)),
        store.insert_requests,
    )


def settled_ingest(
    bus: EventBus,
    store: LedgerStore,
    catalog: Catalog,
    after_write: Callable[[set[tuple[str, str]]], Awaitable[None]] | None = None,
) -> EventIngest:
    return EventIngest(
        bus,
        bus_module.SUBJECT_SETTLED,
        "attempts, requests",
        lambda data: settled_row(data, catalog),
        store.insert_settled,
        after_write,
    )
