"""One attempt's shape: the caller's deadline, the span of a rung, the fault records, and
the accept-or-escalate decision. Pure helpers of the router's ladder walk."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal

import grpc
from opentelemetry import trace

from tierlift.core import adapter_calls, money, pricing
from tierlift.core.catalog import Catalog, tier_name
from tierlift.router import _metrics as metrics
from tierlift.router._circuit import CircuitBreaker
from tierlift.router._leases import UNSET_MAX_TOKENS, worst_case_cost, worst_case_input_tokens
from tierlift.v1 import common_pb2, router_pb2

tracer = trace.get_tracer("tierlift.router")


def fault_attempt(index: int, rung: router_pb2.Rung, error: str, reason: str) -> router_pb2.Attempt:
    """A rung that gave no answer: priced at zero, with what went wrong and what happens next."""
    return router_pb2.Attempt(
        index=index, tier=rung.tier, model=rung.model, adapter=rung.adapter, outcome=router_pb2.OUTCOME_FAULT,
        cost_usd=money.to_wire(Decimal(0)), error=error, reason=reason,
    )  # fmt: skip


def worst_case_attempt(
    index: int, rung: router_pb2.Rung, request: router_pb2.CompleteRequest, catalog: Catalog, outputs: bool = True
) -> router_pb2.Attempt:
    """The attempt a provider call is billed as when its outcome never arrives (the router or the
    adapter stopped mid-call): the request's worst case on this rung, as its reservation counts it
    (`outputs`: False for an embedding, which bills its inputs only)."""
    max_tokens = (request.params.max_tokens or UNSET_MAX_TOKENS) if outputs else 0
    return router_pb2.Attempt(
        index=index, tier=rung.tier, model=rung.model, adapter=rung.adapter, outcome=router_pb2.OUTCOME_FAULT,
        usage=common_pb2.Usage(input_tokens=worst_case_input_tokens(request), output_tokens=max_tokens),
        cost_usd=money.to_wire(worst_case_cost(request, [rung], catalog, outputs)),
        error="UNKNOWN: the call started and no outcome was recorded (its router or adapter stopped mid-call)",
        reason="billed at its worst case until its outcome arrives (unsettled)",
    )  # fmt: skip


def rpc_fault(index: int, rung: router_pb2.Rung, exc: grpc.aio.AioRpcError) -> router_pb2.Attempt:
    return fault_attempt(
        index, rung, f"{exc.code().name}: {exc.details()}", "adapter failed; falling back to the next rung"
    )


def total_cost(attempts: Sequence[router_pb2.Attempt]) -> str:
    """What a request's attempts cost in all, as the wire carries money."""
    return money.to_wire(sum((money.usd(a.cost_usd) for a in attempts), Decimal(0)))


def call_fault(
    index: int,
    rung: router_pb2.Rung,
    exc: grpc.aio.AioRpcError,
    request: router_pb2.CompleteRequest,
    catalog: Catalog,
    outputs: bool = True,
) -> router_pb2.Attempt:
    """A written-ahead provider call that failed: at no cost when the adapter ended it with a status
    of its own (or never took it); at its worst case, `unsettled`, when it may have reached the
    provider and its outcome is not known (core/adapter_calls.py). An unsettled attempt is not
    published: the ledger bills it from its write-ahead record, marked for reconciliation."""
    if not adapter_calls.outcome_unknown(exc):
        return rpc_fault(index, rung, exc)
    attempt = worst_case_attempt(index, rung, request, catalog, outputs)
    attempt.error = f"{exc.code().name}: {exc.details()} (the adapter took the call and gave no status of its own)"
    attempt.reason = "outcome unknown: billed at its worst case (unsettled); falling back to the next rung"
    attempt.unsettled = True
    return attempt


@contextlib.contextmanager
def attempt_span(rung: router_pb2.Rung, catalog: Catalog | None = None) -> Iterator[trace.Span]:
    """One span per rung tried; the adapter call's gRPC client span is its child. With the
    catalog, the span names the model's provider (gen_ai.provider.name)."""
    with tracer.start_as_current_span(f"chat {rung.model}") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", rung.model)
        if catalog is not None and (model := catalog.get(rung.model)) is not None:
            span.set_attribute("gen_ai.provider.name", model.provider)
        span.set_attribute("tierlift.tier", tier_name(rung.tier))
        span.set_attribute("tierlift.adapter", rung.adapter)
        yield span


def annotate(span: trace.Span, attempt: router_pb2.Attempt) -> None:
    metrics.record_attempt(attempt)
    span.set_attribute("tierlift.outcome", router_pb2.Outcome.Name(attempt.outcome).removeprefix("OUTCOME_"))
    span.set_attribute("tierlift.escalated", attempt.outcome == router_pb2.OUTCOME_LOW_CONFIDENCE)
    span.set_attribute("tierlift.confidence", attempt.confidence)
    span.set_attribute("tierlift.cost_usd", attempt.cost_usd)  # exact; gen_ai.usage.cost is for dashboards
    span.set_attributes(pricing.span_attributes(attempt.usage))
    span.set_attribute("gen_ai.usage.cost", float(attempt.cost_usd or 0))
    span.set_attribute("gen_ai.usage.currency", "USD")
    if attempt.outcome != router_pb2.OUTCOME_FAULT:
        span.set_attribute("gen_ai.response.model", attempt.model)  # the catalog's id of what answered
    if attempt.error:
        span.set_status(trace.Status(trace.StatusCode.ERROR, attempt.error))


class Deadline:
    """The caller's gRPC deadline: no attempt may outlive it."""

    def __init__(self, remaining_s: float | None) -> None:
        self._end = time.monotonic() + remaining_s if remaining_s is not None else math.inf

    def left(self) -> float:
        return self._end - time.monotonic()

    def attempt_timeout(self, limit_s: float) -> float:
        return max(0.001, min(limit_s, self.left()))


def skipped(
    index: int, rung: router_pb2.Rung, deadline: Deadline, breaker: CircuitBreaker
) -> router_pb2.Attempt | None:
    """A fault attempt without a call when the rung's circuit is open or no time is left; None
    when the rung may be called (answers and embeddings alike)."""
    if deadline.left() <= 0:
        error = "DEADLINE_EXCEEDED: the request's deadline passed before this rung"
    elif not breaker.allow():
        error = f"UNAVAILABLE: circuit open for {rung.model} on adapter {rung.adapter} after repeated faults"
    else:
        return None
    return fault_attempt(index, rung, error, "not called; falling back to the next rung")


def refuse(attempt: router_pb2.Attempt, problem: str, is_last: bool) -> None:
    """An answer that failed its check (core: router/_answer_check.py): escalated, whatever its
    confidence; at the top of the ladder a fault, so the caller gets the reason, not the answer."""
    attempt.confidence = 0.0
    if is_last:
        attempt.outcome = router_pb2.OUTCOME_FAULT
        attempt.error = f"FAILED_PRECONDITION: the answer fails its check: {problem}"
        attempt.reason = "no rung left to escalate to"
    else:
        attempt.outcome = router_pb2.OUTCOME_LOW_CONFIDENCE
        attempt.reason = f"the answer fails its check: {problem}: escalating"


def decide(attempt: router_pb2.Attempt, threshold: float, is_last: bool) -> None:
    if attempt.confidence >= threshold:
        attempt.outcome = router_pb2.OUTCOME_ANSWERED
        attempt.reason = f"confidence {attempt.confidence:.3f} >= threshold {threshold:.3f}"
    elif is_last:
        attempt.outcome = router_pb2.OUTCOME_ANSWERED
        attempt.reason = (
            f"confidence {attempt.confidence:.3f} < threshold {threshold:.3f}, "
            "but this is the top of the ladder: best available answer"
        )
    else:
        attempt.outcome = router_pb2.OUTCOME_LOW_CONFIDENCE
        attempt.reason = f"confidence {attempt.confidence:.3f} < threshold {threshold:.3f}: escalating"
