"""Builds and publishes the router's events. Event ids derive from the request id, so a
request retried with the same idempotency key produces the same ids and JetStream (and the
ledger) store each event once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from google.protobuf.message import Message as ProtoMessage
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace

from tierlift.core import bus
from tierlift.core.identity import ASSESSOR, caller
from tierlift.core.logging import get_logger
from tierlift.core.text_match import prompt_digest
from tierlift.v1 import common_pb2, events_pb2, router_pb2

log = get_logger(__name__)
PUBLISH_ATTEMPTS = 3
SETTLE_SLACK_S = 5.0  # after a call's own timeout, before the ledger may count it as never finished


class Publisher(Protocol):
    async def publish(self, subject: str, event: ProtoMessage, event_id: str) -> None: ...


class EventsUnavailable(Exception):
    """JetStream did not store an event after retries."""


def _now() -> Timestamp:
    ns = time.time_ns()
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


async def _publish(publisher: Publisher, subject: str, event: ProtoMessage, event_id: str) -> None:
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            await publisher.publish(subject, event, event_id)
            return
        except Exception as exc:
            log.warning("event_publish_failed", subject=subject, event_id=event_id, attempt=attempt, error=repr(exc))
            if attempt == PUBLISH_ATTEMPTS:
                raise EventsUnavailable(f"event bus did not store {subject} {event_id}: {exc!r}") from exc
            await asyncio.sleep(0.05 * 2**attempt)


async def eventually(publish: Callable[[], Awaitable[object]], what: str, request_id: str, within_s: float) -> None:
    """Publish in the background until the bus takes it (a stalled bus), for up to `within_s`:
    the same event ids, so JetStream stores each once if an earlier try was stored unacknowledged.
    What is never stored is billed by the ledger from the call's write-ahead record (unsettled)."""
    give_up = time.monotonic() + within_s
    while True:
        try:
            await publish()
            log.info("event_published_late", what=what, request_id=request_id)
            return
        except EventsUnavailable:
            if time.monotonic() >= give_up:
                log.error("event_not_published", what=what, request_id=request_id, tried_s=within_s)
                return
            await asyncio.sleep(1.0)


def _judging() -> bool:
    """The request is the assessor's LLM judge at work: its attempts are priced as kind "judge"
    (apart from the tenant's live spend) and it is no request of the tenant's own."""
    principal = caller()
    return principal is not None and principal.role == ASSESSOR


def _attempt_event(
    request: router_pb2.CompleteRequest, plan: router_pb2.RoutingPlan, attempt: router_pb2.Attempt
) -> events_pb2.AttemptFinished:
    run = f"{plan.execution_id}." if plan.execution_id else ""  # each run's provider calls billed apart
    event_id = f"{plan.request_id}.{run}attempt.{attempt.index}"
    return events_pb2.AttemptFinished(
        event_id=event_id,
        occurred_at=_now(),
        request_id=plan.request_id,
        tenant=request.tenant,
        workload=request.workload,
        attempt=attempt,
        kind="judge" if _judging() else "",
    )


async def attempt_started(
    publisher: Publisher,
    request: router_pb2.CompleteRequest,
    plan: router_pb2.RoutingPlan,
    worst: router_pb2.Attempt,
    timeout_s: float,
) -> None:
    """Write a ladder's provider call ahead of it (`write_ahead`), with the plan it was routed by;
    `worst` is its worst case."""
    await write_ahead(publisher, _attempt_event(request, plan, worst), timeout_s, plan)


async def write_ahead(
    publisher: Publisher,
    worst: events_pb2.AttemptFinished,
    timeout_s: float,
    plan: router_pb2.RoutingPlan | None = None,
) -> None:
    """Store a provider call before it is made, so a call whose router or adapter dies mid-call is
    billed (as `worst`, its worst case, `unsettled`) when no outcome comes within the call's
    `timeout_s` and SETTLE_SLACK_S; its AttemptFinished, same event id, settles it. Live calls and
    shadow runs alike. The record is also the request's routing on the bus: it carries the live
    request's `plan`, so a request is one awaited publish before its first provider call."""
    event = events_pb2.AttemptStarted(
        event_id=f"{worst.event_id}.started",
        occurred_at=worst.occurred_at,
        attempt=worst,
        reserved_cost_usd=worst.attempt.cost_usd,
        plan=plan,
    )
    event.settle_after.FromNanoseconds(time.time_ns() + int((timeout_s + SETTLE_SLACK_S) * 1e9))
    await _publish(publisher, bus.SUBJECT_ATTEMPT_STARTED, event, event.event_id)


async def attempt_finished(
    publisher: Publisher, request: router_pb2.CompleteRequest, plan: router_pb2.RoutingPlan, attempt: router_pb2.Attempt
) -> events_pb2.AttemptFinished:
    """Publish the attempt; returns its event (a later usage report repeats it)."""
    event = _attempt_event(request, plan, attempt)
    await _publish(publisher, bus.SUBJECT_ATTEMPT, event, event.event_id)
    return event


async def usage_reported(
    publisher: Publisher, finished: events_pb2.AttemptFinished, usage: common_pb2.Usage, cost_usd: str
) -> None:
    """The provider's usage for an attempt published with an estimate: the attempt's event again,
    with the reported usage and its cost, for the ledger to put in place of the estimate."""
    report = events_pb2.AttemptUsage(event_id=f"{finished.event_id}.usage", occurred_at=_now())
    report.attempt.CopyFrom(finished)
    report.attempt.attempt.usage.CopyFrom(usage)
    report.attempt.attempt.cost_usd = cost_usd
    report.attempt.attempt.usage_estimated = False
    await _publish(publisher, bus.SUBJECT_ATTEMPT_USAGE, report, report.event_id)


def _trace_id() -> str:
    """The current span's trace id as 32 hex digits; "" when tracing is off (no valid span)."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else ""


def _completed_event(
    request: router_pb2.CompleteRequest,
    plan: router_pb2.RoutingPlan,
    attempts: list[router_pb2.Attempt],
    total_cost: str,
    answer: router_pb2.Attempt | None,
    error: str,
) -> events_pb2.RequestCompleted:
    event = events_pb2.RequestCompleted(
        event_id=f"{plan.request_id}.completed",
        occurred_at=_now(),
        request_id=plan.request_id,
        tenant=request.tenant,
        workload=request.workload,
        answered=answer is not None,
        attempt_count=len(attempts),
        escalated=any(a.outcome == router_pb2.OUTCOME_LOW_CONFIDENCE for a in attempts),
        total_cost_usd=total_cost,
        error=error,
        prompt_sha256=prompt_digest(request.workload, [(m.role, m.content) for m in request.messages]),
        rollout_id=plan.rollout_id,
        arm=plan.arm,
        prompt_form=plan.classification.prompt_form,
        # where it went and why (the plan's own words; no prompt or answer text), and its trace
        data_class=plan.classification.data_class,
        reasons=plan.reasons,
        excluded=plan.excluded,
        ladder=plan.ladder,
        trace_id=_trace_id(),
    )
    if answer is not None:
        event.final_tier, event.final_model = answer.tier, answer.model
    return event


async def unanswered(
    publisher: Publisher,
    request: router_pb2.CompleteRequest,
    plan: router_pb2.RoutingPlan,
    attempts: list[router_pb2.Attempt],
    total_cost: str,
    error: str,
) -> None:
    """A request that ended without an answer (every rung failed, or the caller left); an
    answered one is `settled`."""
    if _judging():
        return
    event = _completed_event(request, plan, attempts, total_cost, None, error)
    await _publish(publisher, bus.SUBJECT_COMPLETED, event, event.event_id)


async def given_up(
    publisher: Publisher,
    request: router_pb2.CompleteRequest,
    plan: router_pb2.RoutingPlan,
    attempts: list[router_pb2.Attempt],
    total: str,
) -> None:
    """A request whose caller left (cancelled, or its deadline passed), once its attempts are
    billed (`total`): recorded as unanswered, with why."""
    story = f"the caller gave up (cancelled, or its deadline passed) after {len(attempts)} attempt(s)"
    await unanswered(publisher, request, plan, attempts, total, story)
    log.info("request_abandoned", request_id=plan.request_id, attempts=len(attempts), cost_usd=total)


async def settled(
    publisher: Publisher,
    request: router_pb2.CompleteRequest,
    plan: router_pb2.RoutingPlan,
    attempts: list[router_pb2.Attempt],
    total_cost: str,
) -> None:
    """An answered request: its outcome and the answering attempt (the last) in one event. The
    judge's own requests are no request of the tenant's: only their attempt is published."""
    answer = attempts[-1]
    if _judging():
        await attempt_finished(publisher, request, plan, answer)
        return
    event = events_pb2.RequestSettled(
        completed=_completed_event(request, plan, attempts, total_cost, answer, ""),
        attempts=[_attempt_event(request, plan, answer)],
    )
    await _publish(publisher, bus.SUBJECT_SETTLED, event, f"{plan.request_id}.settled")


async def publish_feedback(publisher: Publisher, event: events_pb2.FeedbackGiven) -> None:
    await _publish(publisher, bus.SUBJECT_FEEDBACK, event, event.event_id)
