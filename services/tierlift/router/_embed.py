"""Router.Embed: texts to vectors on the cheapest embedding model the request's limits allow.

The same path as an answer's, minus confidence: the fair share admits it, the classifier reads
every text (the data class limits where they may go), the plan holds the embedding models that
pass the hard limits, cheapest first (router/_policy.py `embed_plan`), a fault falls back to the
next, and the attempts are billed through the same events as a completion's (the texts travel as
the request's user messages, so the ledger prices them at the model's input price). Each call is
written ahead (`announce`, the servicer's) and an adapter that dies mid-call leaves it unsettled,
as a completion's call (router/_attempts.py `call_fault`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import grpc

from tierlift.core import money
from tierlift.router import _events as events
from tierlift.router._attempts import Deadline, annotate, attempt_span, call_fault, skipped
from tierlift.router._failures import RequestFailed
from tierlift.router._validation import InvalidRequest, validate_embed
from tierlift.v1 import adapter_pb2, common_pb2, router_pb2

Plan = Callable[[router_pb2.CompleteRequest], Awaitable[router_pb2.RoutingPlan]]
Announce = Callable[..., Awaitable[None]]  # RouterServicer._announce


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
            await announce(view, plan, index, rung, deadline.attempt_timeout(deps.attempt_timeout_s), outputs=False)
            call = deps.adapters[rung.adapter].Embed(
                adapter_pb2.EmbeddingsRequest(model=rung.model, inputs=request.inputs, dimensions=request.dimensions,
                                              request_id=plan.request_id),
                timeout=deadline.attempt_timeout(deps.attempt_timeout_s),
            )  # fmt: skip
            try:
                result: adapter_pb2.EmbeddingsResponse = await asyncio.shield(call)
            except grpc.aio.AioRpcError as exc:
                breakers[rung.adapter, rung.model].record(exc.code())
                attempt = call_fault(index, rung, exc, view, deps.catalog, outputs=False)
            else:
                breakers[rung.adapter, rung.model].record(grpc.StatusCode.OK)
                model = deps.catalog.get(rung.model)
                attempt = router_pb2.Attempt(
                    index=index, tier=rung.tier, model=rung.model, adapter=rung.adapter,
                    outcome=router_pb2.OUTCOME_ANSWERED, confidence=1.0, usage=result.usage,
                    cost_usd=money.to_wire(model.cost(result.usage.input_tokens, 0)), latency_ms=result.latency_ms,
                    reason="vectors: an embedding is accepted as given",
                )  # fmt: skip
            annotate(span, attempt)
        attempts.append(attempt)
        if attempt.outcome == router_pb2.OUTCOME_ANSWERED:
            total = money.to_wire(sum((money.usd(a.cost_usd) for a in attempts), Decimal(0)))
            await asyncio.shield(events.settled(deps.publisher, view, plan, attempts, total))
            return router_pb2.EmbedResponse(
                request_id=plan.request_id, model=rung.model, tier=rung.tier, vectors=result.vectors,
                usage=result.usage, total_cost_usd=total, attempts=attempts, plan=plan,
            )  # fmt: skip
        if not attempt.unsettled:  # an unsettled one is billed from its write-ahead record
            await events.attempt_finished(deps.publisher, view, plan, attempt)
    story = "; ".join(f"attempt {a.index} {a.adapter}/{a.model}: {a.error}" for a in attempts)
    total = money.to_wire(sum((money.usd(a.cost_usd) for a in attempts), Decimal(0)))
    await events.unanswered(deps.publisher, view, plan, attempts, total, story)
    raise RequestFailed(grpc.StatusCode.UNAVAILABLE, f"every embedding model failed: {story}")
