"""Router.Embed: texts to vectors on the cheapest embedding model the request's limits allow.

The same path as an answer's, minus confidence: the fair share admits it, the classifier reads
every text (the data class limits where they may go), the plan holds the embedding models that
pass the hard limits, cheapest first (router/_policy.py `embed_plan`), a fault falls back to the
next, and the attempts are billed through the same events as a completion's (the texts travel as
the request's user messages, so the ledger prices them at the model's input price). Each call is
written ahead (`announce`, the servicer's) and an adapter that dies mid-call leaves it unsettled,
as a completion's call (router/_attempts.py `call_fault`). A caller that leaves (cancels, or its
deadline passes) does not end the call: it finishes in the background and is billed, and the
request is recorded as given up, as a completion's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc

from tierlift.core import money
from tierlift.core.logging import get_logger
from tierlift.router import _events as events
from tierlift.router._attempts import Deadline, annotate, attempt_span, call_fault, skipped, total_cost
from tierlift.router._failures import RequestFailed
from tierlift.router._validation import InvalidRequest, validate_embed
from tierlift.v1 import adapter_pb2, common_pb2, router_pb2

log = get_logger(__name__)
Plan = Callable[[router_pb2.CompleteRequest], Awaitable[router_pb2.RoutingPlan]]
Announce = Callable[..., Awaitable[None]]  # Ladder.announce
InBackground = Callable[[Coroutine[Any, Any, None]], None]  # Ladder.in_background


def as_completion(request: router_pb2.EmbedRequest) -> router_pb2.CompleteRequest:
    """The request as the classifier, the policy and the ledger read a completion: one user
    message per text."""
    messages = [common_pb2.Message(role="user", content=text) for text in request.inputs]
    return router_pb2.CompleteRequest(tenant=request.tenant, workload=request.workload, messages=messages,
                                      constraints=request.constraints)  # fmt: skip


def validated(request: router_pb2.EmbedRequest) -> router_pb2.CompleteRequest:
    try:
        validate_embed(request)
    except InvalidRequest as exc:
        raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
    return as_completion(request)


async def walk(
    deps: Any,
    breakers: Any,
    request: router_pb2.EmbedRequest,
    view: router_pb2.CompleteRequest,
    plan: router_pb2.RoutingPlan,
    deadline: Deadline,
    announce: Announce,
    in_background: InBackground,
) -> router_pb2.EmbedResponse:
    """Each rung until one gives vectors; every attempt an event, the answer settled before the
    caller has it."""
    attempts: list[router_pb2.Attempt] = []
    for index, rung in enumerate(plan.ladder):
        with attempt_span(rung, deps.catalog) as span:
            # an open circuit or a spent deadline: a fault without a call, as on Complete's ladder
            if (attempt := skipped(index, rung, deadline, breakers[rung.adapter, rung.model])) is not None:
                annotate(span, attempt)
                attempts.append(attempt)
                await events.attempt_finished(deps.publisher, view, plan, attempt)
                continue
            # the attempt's own timeout, not the caller's deadline: a caller who leaves does not end the call
            await announce(view, plan, index, rung, deps.attempt_timeout_s, outputs=False)
            call = asyncio.ensure_future(deps.adapters[rung.adapter].Embed(
                adapter_pb2.EmbeddingsRequest(model=rung.model, inputs=request.inputs, dimensions=request.dimensions,
                                              request_id=plan.request_id),
                timeout=deps.attempt_timeout_s,
            ))  # fmt: skip
            try:
                result: adapter_pb2.EmbeddingsResponse = await asyncio.shield(call)
            except grpc.aio.AioRpcError as exc:
                breakers[rung.adapter, rung.model].record(exc.code())
                attempt = call_fault(index, rung, exc, view, deps.catalog, outputs=False)
            except asyncio.CancelledError:
                in_background(_billed_after_the_caller_left(deps, view, plan, attempts, index, rung, call))
                raise
            else:
                breakers[rung.adapter, rung.model].record(grpc.StatusCode.OK)
                attempt = _vectors(deps, index, rung, result)
            annotate(span, attempt)
        attempts.append(attempt)
        if attempt.outcome == router_pb2.OUTCOME_ANSWERED:
            total = total_cost(attempts)
            await asyncio.shield(events.settled(deps.publisher, view, plan, attempts, total))
            return router_pb2.EmbedResponse(
                request_id=plan.request_id, model=rung.model, tier=rung.tier, vectors=result.vectors,
                usage=result.usage, total_cost_usd=total, attempts=attempts, plan=plan,
            )  # fmt: skip
        if not attempt.unsettled:  # an unsettled one is billed from its write-ahead record
            await events.attempt_finished(deps.publisher, view, plan, attempt)
    story = "; ".join(f"attempt {a.index} {a.adapter}/{a.model}: {a.error}" for a in attempts)
    total = total_cost(attempts)
    await events.unanswered(deps.publisher, view, plan, attempts, total, story)
    raise RequestFailed(grpc.StatusCode.UNAVAILABLE, f"every embedding model failed: {story}")


def _vectors(
    deps: Any, index: int, rung: router_pb2.Rung, result: adapter_pb2.EmbeddingsResponse
) -> router_pb2.Attempt:
    model = deps.catalog.get(rung.model)
    return router_pb2.Attempt(
        index=index, tier=rung.tier, model=rung.model, adapter=rung.adapter,
        outcome=router_pb2.OUTCOME_ANSWERED, confidence=1.0, usage=result.usage,
        cost_usd=money.to_wire(model.cost(result.usage.input_tokens, 0)), latency_ms=result.latency_ms,
        reason="vectors: an embedding is accepted as given",
    )  # fmt: skip


async def _billed_after_the_caller_left(
    deps: Any,
    view: router_pb2.CompleteRequest,
    plan: router_pb2.RoutingPlan,
    attempts: list[router_pb2.Attempt],
    index: int,
    rung: router_pb2.Rung,
    call: asyncio.Future[adapter_pb2.EmbeddingsResponse],
) -> None:
    """The caller left while `call` was in flight: bill it as it ends, and record the request as
    given up, so every attempt row joins a request row that explains it."""
    try:
        try:
            result = await call
        except grpc.aio.AioRpcError as exc:
            attempt = call_fault(index, rung, exc, view, deps.catalog, outputs=False)
        else:
            attempt = _vectors(deps, index, rung, result)
            attempt.outcome = router_pb2.OUTCOME_FAULT
            attempt.error = "CANCELLED: the caller gave up before these vectors arrived"
            attempt.reason = "answered after the caller gave up; billed as the provider bills it"
        attempts.append(attempt)
        if not attempt.unsettled:
            await events.attempt_finished(deps.publisher, view, plan, attempt)
        await events.given_up(deps.publisher, view, plan, attempts, total_cost(attempts))
    except Exception:
        # the ledger's reconciliation writes the request's row if this one is lost
        log.exception("abandoned_request_not_recorded", request_id=plan.request_id)
