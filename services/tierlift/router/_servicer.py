"""The Router servicer: validate -> classify -> plan -> walk the ladder -> answer, with every
attempt published as a billable event before the caller sees the answer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import grpc
import nats.errors

from tierlift.core import money
from tierlift.core.catalog import Catalog, tier_name
from tierlift.core.identity import ASSESSOR, caller
from tierlift.core.logging import get_logger
from tierlift.core.tokens import estimate_tokens
from tierlift.router import _embed as embeddings
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
    worst_case_attempt,
)
from tierlift.router._budgets import BudgetBook, describe
from tierlift.router._circuit import CircuitBreaker
from tierlift.router._classifications import Classifications
from tierlift.router._confidence import score
from tierlift.router._failures import RequestFailed
from tierlift.router._fair_share import FairShare, OverLimit
from tierlift.router._feedback import feedback_event
from tierlift.router._idempotency import Claim, IdempotencyConflict, MemoryKeys, SingleFlight, WaitedTooLong
from tierlift.router._leases import BudgetLeases, Holds, NoReservation, worst_case_cost
from tierlift.router._parts import provider_bound_parts
from tierlift.router._policy import build_plan, data_class_name, embed_plan, has_images
from tierlift.router._policy_source import PolicySource
from tierlift.router._rollouts import (
    CANDIDATE,
    CONTROL,
    RolloutBook,
    comparison,
    policy_arm,
    policy_in_play,
    split,
)
from tierlift.router._shadow import Shadows
from tierlift.router._stream_usage import AdapterStream, bill_estimate, report_late_usage, reported, summary_text
from tierlift.router._validation import InvalidRequest, validate
from tierlift.v1 import (
    adapter_pb2,
    adapter_pb2_grpc,
    classifier_pb2,
    classifier_pb2_grpc,
    common_pb2,
    router_pb2,
    router_pb2_grpc,
)

log = get_logger(__name__)
# Request ids from idempotency keys live in their own UUID namespace.
_IDEMPOTENCY_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tierlift:idempotency")
# an outcome the bus did not take is published again in the background for this long
_LATE_PUBLISH_S = 120.0
_SETTLE_SLACK_S = 5.0  # after a call's own timeout, before the ledger may count it as never finished
_BUS_ERRORS = (nats.errors.Error, TimeoutError)  # what a JetStream key-value call raises while the bus stalls
_PASS_THROUGH_CODES = {
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,  # every answer failed its check (a tool call, JSON)
}


@dataclass(frozen=True)
class RouterDeps:
    classifier: classifier_pb2_grpc.ClassifierStub
    adapters: Mapping[str, adapter_pb2_grpc.ModelAdapterStub]
    catalog: Catalog
    publisher: events.Publisher
    policy: PolicySource
    budgets: BudgetBook = field(default_factory=BudgetBook)
    attempt_timeout_s: float = 60.0
    classifier_timeout_s: float = 2.0
    classification_cache_size: int = 4096
    classification_ttl_s: float = 60.0
    circuit_threshold: int = 5
    circuit_cooldown_s: float = 10.0
    # one execution per idempotency key; production routers share a JetStream bucket
    idempotency: SingleFlight = field(default_factory=lambda: SingleFlight(MemoryKeys()))
    # shadow runs for the workloads whose policy asks for them; None = never
    shadows: Shadows | None = None
    # the rollouts the assessor publishes: each workload's split between control and candidate
    rollouts: RolloutBook = field(default_factory=RolloutBook)
    # reservations of each request's worst case against its budgets (router/_leases.py); None:
    # budgets close tiers only once the ledger says they are exhausted
    leases: BudgetLeases | None = None
    # a stream the caller left is read on this long for the provider's usage, which then replaces
    # the estimate it was billed at (router/_stream_usage.py); 0: never
    late_usage_s: float = 5.0


def request_id_for(request: router_pb2.CompleteRequest) -> str:
    if request.idempotency_key:
        return str(uuid.uuid5(_IDEMPOTENCY_NS, f"{request.tenant}/{request.idempotency_key}"))
    return str(uuid.uuid4())


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(self, deps: RouterDeps) -> None:
        self.deps = deps
        self._background: set[asyncio.Task[None]] = set()  # work that outlives its caller
        self.holds = Holds(deps.leases)  # each request's budget reservations, by request id
        self.fair_share = FairShare()
        self.classifications = Classifications(
            deps.classifier, deps.classifier_timeout_s, deps.classification_cache_size, deps.classification_ttl_s
        )
        # One breaker per (adapter, model): a model is one endpoint in the catalog, and one sick
        # model must not close its healthy neighbours behind the same adapter.
        self.breakers = {
            (m.adapter, m.id): CircuitBreaker(deps.circuit_threshold, deps.circuit_cooldown_s)
            for m in deps.catalog.models
            if m.adapter in deps.adapters
        }
        deployed = [m for m in deps.catalog.models if m.adapter in deps.adapters]
        self.max_prompt_tokens = max((m.context_window for m in deployed), default=0)

    # --- RPCs -------------------------------------------------------------------------------

    async def Plan(
        self, request: router_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.RoutingPlan:
        try:
            self._validated(request)
            return await self._plan(request)
        except RequestFailed as exc:
            await exc.abort(context)
            raise

    async def Embed(
        self, request: router_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.EmbedResponse:
        try:
            _for_caller(request)
            view = embeddings.validated(request)
            async with self._fair_share(view):
                plan = await self._embed_plan(view)
                plan = await self._reserve(view, plan, self._embed_plan, outputs=False)
                deadline = Deadline(context.time_remaining())
                try:
                    reply = await embeddings.walk(
                        self.deps, self.breakers, request, view, plan, deadline, self._announce
                    )
                except BaseException:  # what a failed walk cost is not known here: its worst case
                    self.holds.settle(plan.request_id, None)
                    raise
                self.holds.settle(plan.request_id, reply.total_cost_usd)
                return reply
        except RequestFailed as exc:
            await exc.abort(context)
            raise
        except events.EventsUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise

    async def _embed_plan(self, view: router_pb2.CompleteRequest, closed: str = "") -> router_pb2.RoutingPlan:
        block = self._budget_block(view) or closed
        classification = await self._classify(view)
        policy = self.deps.policy.current
        plan = embed_plan(view, classification, self.deps.catalog, self.deps.adapters.keys(), policy, block)
        plan.request_id = request_id_for(view)
        if not plan.ladder:
            reasons = "; ".join(f"{e.model}: {e.reason}" for e in plan.excluded if e.reason != "an embedding model")
            raise RequestFailed(grpc.StatusCode.FAILED_PRECONDITION, f"no embedding model may serve this ({reasons})")
        return plan

    async def ListModels(
        self, request: router_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ModelList:
        return router_pb2.ModelList(models=[m.id for m in self.deps.catalog.models])

    async def Feedback(
        self, request: router_pb2.FeedbackRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.FeedbackAck:
        try:
            _for_caller(request)
            event = feedback_event(request)
        except RequestFailed as exc:
            await exc.abort(context)
            raise
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        try:
            await events.publish_feedback(self.deps.publisher, event)
        except events.EventsUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise
        return router_pb2.FeedbackAck(event_id=event.event_id)

    async def Complete(
        self, request: router_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.CompleteResponse:
        started = time.perf_counter()
        outcome = "answered"
        try:
            async with self._admitted(request):
                reply, outcome = await self._complete(request, context)
                return reply
        except RequestFailed as exc:
            outcome = exc.code.name.lower()
            await exc.abort(context)
            raise
        except events.EventsUnavailable as exc:
            # Fail closed: an answer whose cost was not recorded would be money lost from the books.
            outcome = "events_unavailable"
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise
        finally:
            metrics.record_request(outcome, time.perf_counter() - started)

    async def _complete(
        self, request: router_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> tuple[router_pb2.CompleteResponse, str]:
        plan = await self._plan(request)
        deadline = Deadline(context.time_remaining())
        claim = await self._claim(request, deadline)
        if claim.replay is not None:
            return claim.replay, "replayed"
        try:
            plan = await self._reserve(request, plan)
            await events.routed(self.deps.publisher, request, plan)
            reply = await self._walk_ladder(request, plan, deadline)
        except BaseException as exc:
            self.holds.unfinished(plan.request_id, exc)
            await self._release(claim)
            raise
        await self._keep_answer(claim, reply)
        self._maybe_shadow(request, plan, lambda: reply)
        return reply, "answered"

    async def CompleteStream(
        self, request: router_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_pb2.CompleteChunk]:
        try:
            # aclosing: a stream the caller stops reading is closed here, in this call's task, not
            # later by the garbage collector in another
            async with self._admitted(request), contextlib.aclosing(self._complete_stream(request, context)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except RequestFailed as exc:
            await exc.abort(context)
        except events.EventsUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))

    async def _complete_stream(
        self, request: router_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[router_pb2.CompleteChunk, None]:
        plan = await self._plan(request)
        deadline = Deadline(context.time_remaining())
        claim = await self._claim(request, deadline)
        if claim.replay is not None:
            replay, request_id = claim.replay, claim.replay.request_id
            yield router_pb2.CompleteChunk(text=replay.text, request_id=request_id, model=replay.model)
            yield router_pb2.CompleteChunk(final=replay, request_id=request_id, model=replay.model)
            return
        finished = False
        text: list[str] = []
        try:
            plan = await self._reserve(request, plan)
            await events.routed(self.deps.publisher, request, plan)
            async with contextlib.aclosing(self._stream_ladder(request, plan, deadline)) as ladder:
                async for chunk in ladder:
                    text.append(chunk.text)
                    if chunk.HasField("final"):
                        await self._keep_answer(claim, chunk.final)
                        finished = True
                        self._maybe_shadow(request, plan, functools.partial(_with_text, chunk.final, text))
                    yield chunk
        except BaseException as exc:
            self.holds.unfinished(plan.request_id, exc)
            if not finished:
                await self._release(claim)
            raise

    async def _claim(self, request: router_pb2.CompleteRequest, deadline: Deadline) -> Claim:
        """Run this request, or wait for (or replay) the first call with its idempotency key."""
        wait_s = min(deadline.left(), self.deps.idempotency.lease_s)
        try:
            return await self.deps.idempotency.claim(request, wait_s)
        except IdempotencyConflict as exc:
            raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        except WaitedTooLong as exc:
            raise RequestFailed(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)) from None
        except _BUS_ERRORS as exc:  # a stalled bus: the caller may retry, nothing ran (was a 500)
            raise RequestFailed(
                grpc.StatusCode.UNAVAILABLE,
                f"idempotency_key: the event bus did not answer ({exc.__class__.__name__}); nothing ran, retry",
                retry_after_s=1.0,
            ) from None

    async def _keep_answer(self, claim: Claim, reply: router_pb2.CompleteResponse) -> None:
        """Remember the answer for retries with the key. The answer is billed and the caller gets
        it even when the bus stalls now; only a retry's replay is lost (logged)."""
        try:
            await self.deps.idempotency.finish(claim, reply)
        except _BUS_ERRORS as exc:
            log.warning("idempotent_answer_not_kept_yet", request_id=reply.request_id, error=repr(exc))
            self._in_background(self._keep_answer_later(claim, reply))

    async def _keep_answer_later(self, claim: Claim, reply: router_pb2.CompleteResponse) -> None:
        """Keep trying while the bus stalls: a retry meanwhile waits on the key (or is told to retry),
        and once the answer is kept it is replayed, never a second provider call."""
        give_up = time.monotonic() + _LATE_PUBLISH_S
        while time.monotonic() < give_up:
            await asyncio.sleep(1.0)
            try:
                await self.deps.idempotency.finish(claim, reply)
            except _BUS_ERRORS:
                continue
            log.info("idempotent_answer_kept_late", request_id=reply.request_id)
            return
        log.error("idempotent_answer_not_kept", request_id=reply.request_id)

    async def _release(self, claim: Claim) -> None:
        """Free the key after a failure; on a stalled bus its lease lapses instead (logged), and
        the failure the caller gets is the original one."""
        try:
            await self.deps.idempotency.release(claim)
        except _BUS_ERRORS as exc:
            log.warning("idempotency_claim_not_released", error=repr(exc))

    # --- steps ------------------------------------------------------------------------------

    def _maybe_shadow(
        self,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        reply: Callable[[], router_pb2.CompleteResponse],
    ) -> None:
        """A sampled request runs again on the workload's shadow models after the caller has its
        answer (router/_shadow.py); nothing here waits for them. `reply` builds the answer only
        for a sampled request (a streamed one is assembled from its chunks)."""
        principal = caller()
        if self.deps.shadows is None or (principal is not None and principal.role == ASSESSOR):
            return  # the assessor's judge calls are never shadowed (they would judge themselves)
        policy = self.deps.policy.current
        shadows = self.deps.shadows
        runs = [shadows.sampled(policy, request.workload)]
        if plan.rollout_id and (state := self.deps.rollouts.for_workload(request.workload)) is not None:
            rollout = comparison(state, plan.arm)
            runs.append(rollout if rollout is not None and shadows.draw() < rollout.sample else None)
        answer = None
        for shadow in filter(None, runs):
            answer = answer or reply()
            self._in_background(shadows.run(shadow, policy, request, plan, answer))

    @contextlib.asynccontextmanager
    async def _admitted(self, request: router_pb2.CompleteRequest) -> AsyncIterator[None]:
        """Validated, then the tenant's fair share, counted before any work (classifying included)."""
        self._validated(request)
        async with self._fair_share(request):
            yield

    @contextlib.asynccontextmanager
    async def _fair_share(self, request: router_pb2.CompleteRequest) -> AsyncIterator[None]:
        policy = self.deps.policy.current
        share = self.fair_share
        share.default, share.tenants, share.keys = policy.default_limits, policy.tenant_limits, policy.key_limits
        principal = caller()
        key_id = principal.key_id if principal is not None else ""
        try:
            share.admit(request.tenant, estimate_tokens("".join(m.content for m in request.messages)), key_id)
        except OverLimit as exc:
            raise RequestFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), exc.retry_after_s) from None
        try:
            yield
        finally:
            share.release(request.tenant, key_id)

    def _validated(self, request: router_pb2.CompleteRequest) -> None:
        _for_caller(request)
        try:
            validate(request, self.max_prompt_tokens)
        except InvalidRequest as exc:
            raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None

    def _budget_block(self, request: router_pb2.CompleteRequest) -> str:
        """Why paid tiers are closed to the request ("" when they are not); RESOURCE_EXHAUSTED when
        an exhausted budget rejects."""
        exhausted = self.deps.budgets.exhausted(request.tenant, request.workload)
        if rejecting := [b for b in exhausted if b.action == "reject"]:
            raise RequestFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, describe(rejecting[0]))
        return describe(exhausted[0]) + ": paid tiers are closed" if exhausted else ""

    async def _plan(self, request: router_pb2.CompleteRequest, closed: str = "") -> router_pb2.RoutingPlan:
        """For a validated request (Plan validates; Complete's admission did). `closed`: why paid
        tiers are closed when no exhausted budget says so (a reservation that could not be had)."""
        budget_block = self._budget_block(request) or closed
        classification = await self._classify(request)
        request_id = request_id_for(request)
        policy, arm = self.deps.policy.current, ""
        rollout = self.deps.rollouts.for_workload(request.workload)
        if rollout is not None and policy_in_play(rollout, policy.version):  # a policy canary: the arm picks it
            arm = policy_arm(request, rollout, request_id)
            candidate = self.deps.rollouts.candidate_policy(rollout, policy) if arm == CANDIDATE else None
            arm, policy = (CANDIDATE, candidate) if candidate is not None else (CONTROL, policy)
        plan = build_plan(request, classification, self.deps.catalog, self.deps.adapters.keys(), policy, budget_block)
        plan.request_id = request_id
        if request.idempotency_key:  # a run after a failed one is billed apart (events._attempt_event)
            plan.execution_id = uuid.uuid4().hex[:12]
        if rollout is not None and arm:
            plan.rollout_id, plan.arm = rollout.rollout_id, arm
            plan.reasons.append(f"rollout {plan.rollout_id}: {arm} arm (policy {policy.version})")
        elif plan.ladder and rollout is not None and not rollout.candidate_policy:
            split(plan, request, rollout, self.deps.catalog)
        metrics.record_plan(plan, self.deps.catalog)
        if not plan.ladder:
            reasons = "; ".join(f"{e.model}: {e.reason}" for e in plan.excluded)
            raise RequestFailed(grpc.StatusCode.FAILED_PRECONDITION, f"no model may serve this request ({reasons})")
        return plan

    async def _reserve(
        self,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        replan: Callable[[router_pb2.CompleteRequest, str], Awaitable[router_pb2.RoutingPlan]] | None = None,
        outputs: bool = True,
    ) -> router_pb2.RoutingPlan:
        """Reserve the plan's worst case on every budget that covers the request (router/_leases.py)
        before any provider is called. A `local_only` budget that cannot reserve it closes the paid
        tiers (`replan`, by default `_plan`, makes the plan again without them); a `reject` budget
        fails the request. `outputs`: False for embeddings, which bill no output tokens."""
        leases = self.deps.leases
        budgets = self.deps.budgets.covering(request.tenant, request.workload)
        if leases is None or not budgets:
            return plan
        paid = any(r.tier != common_pb2.TIER_LOCAL for r in plan.ladder)
        wanted = [b for b in budgets if b.action == "reject" or paid]  # local_only keeps LOCAL open anyway
        if not wanted:
            return plan
        try:
            hold = await leases.reserve(wanted, worst_case_cost(request, plan.ladder, self.deps.catalog, outputs))
        except NoReservation as exc:
            if exc.state.action != "reject" and paid:
                log.info("paid_tiers_closed_by_reservation", tenant=request.tenant, reason=str(exc))
                again = await (replan or self._plan)(request, f"{exc}: paid tiers are closed")
                return await self._reserve(request, again, replan, outputs)
            if exc.unavailable:
                raise RequestFailed(grpc.StatusCode.UNAVAILABLE, str(exc), retry_after_s=1.0) from None
            raise RequestFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from None
        self.holds.add(plan.request_id, hold)
        return plan

    async def _classify(self, request: router_pb2.CompleteRequest) -> classifier_pb2.Classification:
        labels = await self._labels(request)
        if has_images(request) and not request.constraints.data_class:
            # no detector reads an image: it is CONFIDENTIAL unless the caller declares its class
            labels = unread_images(labels)
        return labels

    async def _labels(self, request: router_pb2.CompleteRequest) -> classifier_pb2.Classification:
        try:
            return await self.classifications.classify(
                classifier_pb2.ClassifyRequest(
                    messages=request.messages,
                    declared_data_class=request.constraints.data_class,
                    tenant=request.tenant,
                    parts=provider_bound_parts(request),
                )
            )
        except grpc.aio.AioRpcError as exc:
            # Without a data class we cannot know where the data may go: refuse rather than guess.
            raise RequestFailed(
                grpc.StatusCode.UNAVAILABLE, f"classifier: {exc.code().name}: {exc.details()}"
            ) from None

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

    async def _walk_ladder(
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
                        call = asyncio.ensure_future(self._generate(request, plan, index, rung, deadline))
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
            self._in_background(self._abandoned(request, plan, attempts, in_flight))
            raise
        await self._give_up(request, plan, attempts)
        raise AssertionError("unreachable")

    async def _generate(
        self,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        index: int,
        rung: router_pb2.Rung,
        deadline: Deadline,
    ) -> adapter_pb2.GenerateResponse:
        """One provider call, written ahead (`_announce`) before it is made; its timeout is what is
        left once the record is stored, so it ends by the time the record names."""
        await self._announce(request, plan, index, rung, deadline.attempt_timeout(self.deps.attempt_timeout_s))
        return await self.deps.adapters[rung.adapter].Generate(
            self._generate_request(request, rung, plan.request_id),
            timeout=deadline.attempt_timeout(self.deps.attempt_timeout_s),
        )

    async def _announce(
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
            await events.attempt_started(self.deps.publisher, request, plan, worst, timeout_s + _SETTLE_SLACK_S)
        except events.EventsUnavailable:
            # a stalled bus may yet store what it did not acknowledge: the call is closed at no cost
            error = "UNAVAILABLE: the event bus did not store this call's write-ahead record; not called"
            closed = fault_attempt(index, rung, error, "not called")
            publish = functools.partial(events.attempt_finished, self.deps.publisher, request, plan, closed)
            self._in_background(events.eventually(publish, "not_called", plan.request_id, _LATE_PUBLISH_S))
            raise

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
            total = money.to_wire(sum((money.usd(a.cost_usd) for a in attempts), Decimal(0)))
            self.holds.settle(plan.request_id, total)
            story = f"the caller gave up (cancelled, or its deadline passed) after {len(attempts)} attempt(s)"
            await events.unanswered(self.deps.publisher, request, plan, attempts, total, story)
            log.info("request_abandoned", request_id=plan.request_id, attempts=len(attempts), cost_usd=total)
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
        total = money.to_wire(sum((money.usd(a.cost_usd) for a in attempts), Decimal(0)))
        self.holds.settle(plan.request_id, total)
        try:
            await asyncio.shield(events.settled(self.deps.publisher, request, plan, attempts, total))
        except events.EventsUnavailable:
            # The answering call was written ahead: it is on the books (at its worst case, until
            # its outcome lands) whatever the bus does now. The caller gets the answer it is billed
            # for, and the outcome goes on being published in the background.
            log.warning("settled_event_delayed", request_id=plan.request_id)
            publish = functools.partial(events.settled, self.deps.publisher, request, plan, attempts, total)
            self._in_background(events.eventually(publish, "settled", plan.request_id, _LATE_PUBLISH_S))
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
        total = money.to_wire(sum((money.usd(a.cost_usd) for a in attempts), Decimal(0)))
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

    async def _stream_ladder(
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
                await self._announce(request, plan, index, rung, deadline.attempt_timeout(self.deps.attempt_timeout_s))
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
                self._in_background(self._cut_stream(request, plan, attempts, stream))
            else:
                # a rung written ahead but never called (the caller left meanwhile) is closed at no cost
                not_called = announced if announced is not None and announced[0] == len(attempts) else None
                self._in_background(self._abandoned(request, plan, attempts, None, not_called))
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


def _for_caller(request: router_pb2.CompleteRequest | router_pb2.EmbedRequest | router_pb2.FeedbackRequest) -> None:
    """The tenant comes from the credential: an app key acts for its own tenant (filled in when
    the request names none) and its own workloads; an admin key names the tenant it acts for."""
    principal = caller()
    if principal is None or principal.role != "app":
        return
    if not request.tenant:
        request.tenant = principal.tenant
    if request.tenant != principal.tenant:
        raise RequestFailed(
            grpc.StatusCode.PERMISSION_DENIED, f"tenant: this key belongs to tenant {principal.tenant!r}"
        )
    if (
        isinstance(request, router_pb2.CompleteRequest | router_pb2.EmbedRequest)
        and principal.workloads
        and request.workload not in principal.workloads
    ):
        raise RequestFailed(
            grpc.StatusCode.PERMISSION_DENIED, f"workload: this key may use {list(principal.workloads)} only"
        )


def unread_images(labels: classifier_pb2.Classification) -> classifier_pb2.Classification:
    raised = classifier_pb2.Classification()
    raised.CopyFrom(labels)  # the classifier's answer is shared by the requests it serves
    raised.data_class = max(raised.data_class, common_pb2.DATA_CLASS_CONFIDENTIAL)
    raised.data_findings.append("image_undeclared")
    return raised


def _with_text(final: router_pb2.CompleteResponse, chunks: list[str]) -> router_pb2.CompleteResponse:
    """A streamed answer's final message with the text its chunks carried."""
    answered = router_pb2.CompleteResponse()
    answered.CopyFrom(final)
    answered.text = answered.text or "".join(chunks)
    return answered
