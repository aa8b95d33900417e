"""A request's ladder walked rung by rung: each provider call written ahead, priced, accepted or
escalated, and billed through events before the caller has the answer; Complete's walk and
CompleteStream's, and what is recorded when a caller leaves mid-ladder. The servicer
(router/_servicer.py) admits and plans; the ladder calls the providers."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Coroutine
from typing import Any

import grpc

from tierlift.core import money
from tierlift.core.catalog import tier_name
from tierlift.core.logging import get_logger
from tierlift.router import _events as events
from tierlift.router import _metrics as metrics
from tierlift.router._answer_check import answer_problem
from tierlift.router._attempts import (
    Deadline,
    annotate,
    attempt_span,
    call_fault,
    decide,
    fault_attempt,
    refuse,
    skipped,
    total_cost,
    worst_case_attempt,
)
from tierlift.router._circuit import CircuitBreaker
from tierlift.router._confidence import score
from tierlift.router._deps import RouterDeps
from tierlift.router._failures import RequestFailed
from tierlift.router._leases import Holds
from tierlift.router._policy import data_class_name
from tierlift.router._stream_usage import AdapterStream, bill_estimate, report_late_usage, reported, summary_text
from tierlift.v1 import adapter_pb2, common_pb2, router_pb2

log = get_logger(__name__)
# an outcome the bus did not take is published again in the background for this long
LATE_PUBLISH_S = 120.0
_PASS_THROUGH_CODES = {
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,  # every answer failed its check (a tool call, JSON)
}


class Ladder:
    def __init__(self, deps: RouterDeps, holds: Holds, breakers: dict[tuple[str, str], CircuitBreaker]) -> None:
        self.deps, self.holds, self.breakers = deps, holds, breakers
        self._background: set[asyncio.Task[None]] = set()  # work that outlives its caller

    def _generate_request(
        self, request: router_pb2.CompleteRequest, rung: router_pb2.Rung, request_id: str
    ) -> adapter_pb2.GenerateRequest:
        return adapter_pb2.GenerateRequest(
            model=rung.model, messages=request.messages, params=request.params, request_id=request_id
        )

    def _priced_attempt(
        self,
        request: router_pb2.CompleteRequest,
        index: int,
        rung: router_pb2.Rung,
        result: adapter_pb2.GenerateResponse,
        plan: router_pb2.RoutingPlan,
    ) -> router_pb2.Attempt:
        """The attempt of an answer, priced from the provider's usage; from counted tokens, marked
        `usage_estimated`, when the provider reported none (never free)."""
        model = self.deps.catalog.get(rung.model)
        assert model is not None  # the plan only holds catalog models
        cost = model.usage_cost(result.usage).total
        policy = self.deps.rollouts.policy_for(plan, self.deps.policy.current)  # a policy canary's own scoring
        prior = policy.prior(rung.tier, plan.classification)
        attempt = router_pb2.Attempt(
            index=index,
            tier=rung.tier,
            model=rung.model,
            adapter=rung.adapter,
            confidence=score(result.confidence, prior, rung.model, policy.confidence_model),
            signals=result.confidence,
            prior=prior,
            usage=result.usage,
            cost_usd=money.to_wire(cost),
            latency_ms=result.latency_ms,
        )
        if not reported(result.usage):
            bill_estimate(attempt, request, summary_text(result), self.deps.catalog)
        return attempt

    def _skip(self, index: int, rung: router_pb2.Rung, deadline: Deadline) -> router_pb2.Attempt | None:
        return skipped(index, rung, deadline, self.breakers[rung.adapter, rung.model])

    async def walk(
        self, request: router_pb2.CompleteRequest, plan: router_pb2.RoutingPlan, deadline: Deadline
    ) -> router_pb2.CompleteResponse:
        attempts: list[router_pb2.Attempt] = []
        results: list[adapter_pb2.GenerateResponse] = []
        last = len(plan.ladder) - 1
        self.holds.started(plan.request_id)
        in_flight: tuple[int, router_pb2.Rung, asyncio.Future[adapter_pb2.GenerateResponse]] | None = None
        try:
            for index, rung in enumerate(plan.ladder):
                with attempt_span(rung, self.deps.catalog) as span:
                    attempt = self._skip(index, rung, deadline)
                    if attempt is None:
                        # shielded: if the caller goes away, the provider call finishes and is billed
                        call = asyncio.ensure_future(self._generate(request, plan, index, rung))
                        in_flight = (index, rung, call)
                        try:
                            result = await asyncio.shield(call)
                        except grpc.aio.AioRpcError as exc:
                            self.breakers[rung.adapter, rung.model].record(exc.code())
                            attempt = call_fault(index, rung, exc, request, self.deps.catalog)
                        else:
                            self.breakers[rung.adapter, rung.model].record(grpc.StatusCode.OK)
                            attempt = self._priced_attempt(request, index, rung, result, plan)
                            decide(attempt, plan.confidence_threshold, is_last=index == last)
                            if problem := answer_problem(request, result):
                                refuse(attempt, problem, is_last=index == last)
                            results.append(result)
                        in_flight = None
                    annotate(span, attempt)
                attempts.append(attempt)
                if attempt.outcome == router_pb2.OUTCOME_ANSWERED:
                    return await self._answered(request, plan, attempts, results[-1])
                if not attempt.unsettled:  # an unsettled one is billed from its write-ahead record
                    await events.attempt_finished(self.deps.publisher, request, plan, attempt)
        except asyncio.CancelledError:
            self.in_background(self._abandoned(request, plan, attempts, in_flight))
            raise
        await self._give_up(request, plan, attempts)
        raise AssertionError("unreachable")

    async def _generate(
        self,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        index: int,
        rung: router_pb2.Rung,
    ) -> adapter_pb2.GenerateResponse:
        """One provider call, written ahead (`_announce`) before it is made; its timeout is the
        attempt's own, counted once the record is stored, so it ends by the time the record names.
        Not the caller's deadline: a caller whose deadline passes leaves the call to finish in the
        background and be billed as the provider answered, as a caller who cancels does (`walk`);
        cut at the deadline, it would be closed at no cost though the provider had it."""
        timeout = self.deps.attempt_timeout_s
        await self.announce(request, plan, index, rung, timeout)
        return await self.deps.adapters[rung.adapter].Generate(
            self._generate_request(request, rung, plan.request_id), timeout=timeout
        )

    async def announce(
        self,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        index: int,
        rung: router_pb2.Rung,
        timeout_s: float,
        outputs: bool = True,
    ) -> None:
        """The write-ahead record of a provider call (`events.attempt_started`): stored before the
        call, or the call is not made (EventsUnavailable: the caller gets UNAVAILABLE). `outputs`:
        False for an embedding."""
        worst = worst_case_attempt(index, rung, request, self.deps.catalog, outputs)
        try:
            await events.attempt_started(self.deps.publisher, request, plan, worst, timeout_s)
        except events.EventsUnavailable:
            # a stalled bus may yet store what it did not acknowledge: the call is closed at no cost
            error = "UNAVAILABLE: the event bus did not store this call's write-ahead record; not called"
            closed = fault_attempt(index, rung, error, "not called")
            publish = functools.partial(events.attempt_finished, self.deps.publisher, request, plan, closed)
            self.in_background(events.eventually(publish, "not_called", plan.request_id, LATE_PUBLISH_S))
            raise

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def finish_background(self, within_s: float) -> int:
        """At shutdown, once no call is being served: let the work that outlived its caller (a
        shadow run, a call the caller left being billed, an event the bus took late) end before
        the channels and the bus close, for up to `within_s`. What is cut then is billed from its
        write-ahead record (at its worst case, `unsettled`). Returns how many were cut."""
        deadline = asyncio.get_running_loop().time() + within_s
        while self._background:  # (work that ends may start more: an abandoned call's events)
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await asyncio.wait(set(self._background), timeout=left)
        cut = list(self._background)
        for task in cut:
            task.cancel()
        if cut:
            log.warning("background_work_cut_at_shutdown", tasks=len(cut), waited_s=within_s)
        return len(cut)

    async def _abandoned(
        self,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        attempts: list[router_pb2.Attempt],
        in_flight: tuple[int, router_pb2.Rung, asyncio.Future[adapter_pb2.GenerateResponse]] | None,
        not_called: tuple[int, router_pb2.Rung] | None = None,
    ) -> None:
        """The caller gave up (cancelled, or its deadline passed) mid-ladder: let the call in
        flight finish, bill it, and record how the request ended, so every attempt row in the
        ledger joins a request row that explains it."""
        try:
            if in_flight is not None:
                index, rung, call = in_flight
                try:
                    result = await call
                except grpc.aio.AioRpcError as exc:
                    attempt = call_fault(index, rung, exc, request, self.deps.catalog)
                else:
                    attempt = self._priced_attempt(request, index, rung, result, plan)
                    attempt.outcome = router_pb2.OUTCOME_FAULT
                    attempt.error = "CANCELLED: the caller gave up before this answer arrived"
                    attempt.reason = "answered after the caller gave up; billed as the provider bills it"
                metrics.record_attempt(attempt)
                attempts.append(attempt)
                if not attempt.unsettled:
                    await events.attempt_finished(self.deps.publisher, request, plan, attempt)
            if not_called is not None:
                error = "CANCELLED: the caller left before this rung was called"
                attempts.append(fault_attempt(*not_called, error, "not called"))
                await events.attempt_finished(self.deps.publisher, request, plan, attempts[-1])
            total = total_cost(attempts)
            self.holds.settle(plan.request_id, total)
            await events.given_up(self.deps.publisher, request, plan, attempts, total)
        except Exception:
            # the ledger's reconciliation writes the request's row if this one is lost
            log.exception("abandoned_request_not_recorded", request_id=plan.request_id)
        finally:
            self.holds.settle(plan.request_id, None)  # a cost not known (a failure above): its worst case

    async def _answered(
        self,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        attempts: list[router_pb2.Attempt],
        result: adapter_pb2.GenerateResponse,
    ) -> router_pb2.CompleteResponse:
        """The answering attempt (the last) and the request's outcome go out as one event, stored
        (acknowledged) before the caller gets the answer. Shielded: a caller that leaves now does
        not stop the billable event from being stored."""
        answer = attempts[-1]
        total = total_cost(attempts)
        self.holds.settle(plan.request_id, total)
        try:
            await asyncio.shield(events.settled(self.deps.publisher, request, plan, attempts, total))
        except events.EventsUnavailable:
            # The answering call was written ahead: it is on the books (at its worst case, until
            # its outcome lands) whatever the bus does now. The caller gets the answer it is billed
            # for, and the outcome goes on being published in the background.
            log.warning("settled_event_delayed", request_id=plan.request_id)
            publish = functools.partial(events.settled, self.deps.publisher, request, plan, attempts, total)
            self.in_background(events.eventually(publish, "settled", plan.request_id, LATE_PUBLISH_S))
        log.info(
            "request_answered",
            request_id=plan.request_id,
            tier=tier_name(answer.tier),
            model=answer.model,
            confidence=round(answer.confidence, 3),
            attempts=len(attempts),
            cost_usd=total,
        )
        return router_pb2.CompleteResponse(
            request_id=plan.request_id,
            text=result.text,
            tool_calls=result.tool_calls,
            finish_reason=result.finish_reason or "stop",
            tier=answer.tier,
            model=answer.model,
            confidence=answer.confidence,
            usage=answer.usage,
            total_cost_usd=total,
            attempts=attempts,
            plan=plan,
        )

    async def _give_up(
        self,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        attempts: list[router_pb2.Attempt],
    ) -> None:
        """No rung gave an answer (faults, or answers that failed their check): publish the outcome and
        raise the clearest status."""
        story = "; ".join(f"attempt {a.index} {a.adapter}/{a.model}: {a.error or a.reason}" for a in attempts)
        total = total_cost(attempts)
        self.holds.settle(plan.request_id, total)
        await events.unanswered(self.deps.publisher, request, plan, attempts, total, story)
        codes = {a.error.split(":", 1)[0] for a in attempts if a.outcome == router_pb2.OUTCOME_FAULT}
        data_class = plan.classification.data_class
        if data_class == common_pb2.DATA_CLASS_REGULATED:
            raise RequestFailed(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"data class {data_class_name(data_class)} keeps this request on tier LOCAL and every "
                f"LOCAL rung failed: {story}",
            )
        code = grpc.StatusCode[codes.pop()] if len(codes) == 1 else grpc.StatusCode.UNAVAILABLE
        if code not in _PASS_THROUGH_CODES:
            code = grpc.StatusCode.UNAVAILABLE
        raise RequestFailed(code, f"every rung failed: {story}")

    async def stream(
        self, request: router_pb2.CompleteRequest, plan: router_pb2.RoutingPlan, deadline: Deadline
    ) -> AsyncGenerator[router_pb2.CompleteChunk, None]:
        """Stream from the first rung that starts answering. Once text has reached the caller the
        router cannot take it back, so a streamed answer is never escalated; faults before the
        first chunk fall back along the ladder as in Complete. A stream without the provider's
        usage is billed from counted tokens (router/_stream_usage.py)."""
        attempts: list[router_pb2.Attempt] = []
        streaming: tuple[router_pb2.Rung, AdapterStream] | None = None
        announced: tuple[int, router_pb2.Rung] | None = None  # the rung last written ahead
        answered = False
        self.holds.started(plan.request_id)
        try:
            for index, rung in enumerate(plan.ladder):
                skipped = self._skip(index, rung, deadline)
                if skipped is not None:
                    metrics.record_attempt(skipped)
                    attempts.append(skipped)
                    await events.attempt_finished(self.deps.publisher, request, plan, skipped)
                    continue
                announced = (index, rung)
                await self.announce(request, plan, index, rung, deadline.attempt_timeout(self.deps.attempt_timeout_s))
                stream = AdapterStream(
                    self.deps.adapters[rung.adapter].GenerateStream(
                        self._generate_request(request, rung, plan.request_id),
                        timeout=deadline.attempt_timeout(self.deps.attempt_timeout_s),
                    )
                )
                summary: adapter_pb2.GenerateResponse | None = None
                streaming = (rung, stream)
                try:
                    while (chunk := await stream.next()) is not None:
                        if chunk.final:
                            summary = chunk.summary
                        else:
                            yield router_pb2.CompleteChunk(
                                text=chunk.text, request_id=plan.request_id, model=rung.model
                            )
                except grpc.aio.AioRpcError as exc:
                    streaming = None
                    self.breakers[rung.adapter, rung.model].record(exc.code())
                    attempts.append(call_fault(index, rung, exc, request, self.deps.catalog))
                    metrics.record_attempt(attempts[-1])
                    if attempts[-1].unsettled:  # billed from its write-ahead record
                        continue
                    if stream.text:  # the provider answered part of it: billed from what came
                        bill_estimate(attempts[-1], request, "".join(stream.text), self.deps.catalog)
                    await events.attempt_finished(self.deps.publisher, request, plan, attempts[-1])
                    continue
                streaming = None
                self.breakers[rung.adapter, rung.model].record(grpc.StatusCode.OK)
                if summary is None:
                    raise RequestFailed(
                        grpc.StatusCode.INTERNAL, f"adapter {rung.adapter} ended the stream without a summary"
                    )
                attempt = self._priced_attempt(request, index, rung, summary, plan)
                attempt.outcome = router_pb2.OUTCOME_ANSWERED
                attempt.reason = "streamed answer: accepted as sent (text already reached the caller)"
                if not reported(summary.usage):  # the provider sent no usage: counted here
                    bill_estimate(attempt, request, summary_text(summary) or "".join(stream.text), self.deps.catalog)
                metrics.record_attempt(attempt)
                attempts.append(attempt)
                final = await self._answered(request, plan, attempts, summary)
                answered = True  # settled and billed: a caller that stops reading now abandons nothing
                yield router_pb2.CompleteChunk(final=final, request_id=plan.request_id, model=final.model)
                return
        except (asyncio.CancelledError, GeneratorExit):
            if answered:
                raise
            if streaming is not None:
                # the provider's answer is cut off here: billed from the tokens counted so far, and
                # the stream read on in the background for the provider's own usage
                rung, stream = streaming
                cut = fault_attempt(
                    len(attempts), rung,
                    "CANCELLED: the caller left mid-stream; billed from counted tokens until the provider's usage "
                    "arrives", "stream cut off when the caller left",
                )  # fmt: skip
                bill_estimate(cut, request, "".join(stream.text), self.deps.catalog)
                attempts.append(cut)
                self.in_background(self._cut_stream(request, plan, attempts, stream))
            else:
                # a rung written ahead but never called (the caller left meanwhile) is closed at no cost
                not_called = announced if announced is not None and announced[0] == len(attempts) else None
                self.in_background(self._abandoned(request, plan, attempts, None, not_called))
            raise
        await self._give_up(request, plan, attempts)

    async def _cut_stream(
        self,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        attempts: list[router_pb2.Attempt],
        stream: AdapterStream,
    ) -> None:
        """The caller left mid-stream: publish the cut attempt (estimated) and how the request
        ended, then read the adapter's stream on for the provider's usage (`late_usage_s`); when
        it comes, report it, and the ledger replaces the estimate with it."""
        cut = attempts[-1]
        finished = None
        try:
            metrics.record_attempt(cut)
            finished = await events.attempt_finished(self.deps.publisher, request, plan, cut)
        except Exception:
            log.exception("abandoned_attempt_not_recorded", request_id=plan.request_id)
        await self._abandoned(request, plan, attempts, None)
        if finished is not None:
            await report_late_usage(self.deps.publisher, self.deps.catalog, finished, stream, self.deps.late_usage_s)
        else:
            await stream.close()
