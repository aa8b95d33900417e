"""The Router servicer: validate -> classify -> plan -> walk the ladder (router/_ladder.py) ->
answer, with every attempt published as a billable event before the caller sees the answer. Here:
admission (fair share, budgets, reservations), plans, idempotency and shadows."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

import grpc
import nats.errors

from tierlift.core.identity import ASSESSOR, caller
from tierlift.core.logging import get_logger
from tierlift.core.tokens import estimate_tokens
from tierlift.router import _embed as embeddings
from tierlift.router import _events as events
from tierlift.router import _metrics as metrics
from tierlift.router._attempts import Deadline
from tierlift.router._budgets import describe
from tierlift.router._circuit import CircuitBreaker
from tierlift.router._classifications import Classifications
from tierlift.router._deps import RouterDeps
from tierlift.router._failures import RequestFailed
from tierlift.router._fair_share import FairShare, OverLimit
from tierlift.router._feedback import feedback_event
from tierlift.router._idempotency import Claim, IdempotencyConflict, WaitedTooLong
from tierlift.router._ladder import LATE_PUBLISH_S, Ladder
from tierlift.router._leases import Holds, NoReservation, worst_case_cost
from tierlift.router._parts import provider_bound_parts
from tierlift.router._policy import build_plan, embed_plan, has_images
from tierlift.router._rollouts import CANDIDATE, CONTROL, comparison, policy_arm, policy_in_play, split
from tierlift.router._validation import InvalidRequest, validate
from tierlift.v1 import classifier_pb2, common_pb2, router_pb2, router_pb2_grpc

log = get_logger(__name__)
# Request ids from idempotency keys live in their own UUID namespace.
_IDEMPOTENCY_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tierlift:idempotency")
_BUS_ERRORS = (nats.errors.Error, TimeoutError)  # what a JetStream key-value call raises while the bus stalls


def request_id_for(request: router_pb2.CompleteRequest) -> str:
    if request.idempotency_key:
        return str(uuid.uuid5(_IDEMPOTENCY_NS, f"{request.tenant}/{request.idempotency_key}"))
    return str(uuid.uuid4())


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(self, deps: RouterDeps) -> None:
        self.deps = deps
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
        self.ladder = Ladder(deps, self.holds, self.breakers)
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
                        self.deps, self.breakers, request, view, plan, deadline, self.ladder.announce,
                        self.ladder.in_background,
                    )  # fmt: skip
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
            reply = await self.ladder.walk(request, plan, deadline)
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
            async with contextlib.aclosing(self.ladder.stream(request, plan, deadline)) as ladder:
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
            self.ladder.in_background(self._keep_answer_later(claim, reply))

    async def _keep_answer_later(self, claim: Claim, reply: router_pb2.CompleteResponse) -> None:
        """Keep trying while the bus stalls: a retry meanwhile waits on the key (or is told to retry),
        and once the answer is kept it is replayed, never a second provider call."""
        give_up = time.monotonic() + LATE_PUBLISH_S
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
            self.ladder.in_background(shadows.run(shadow, policy, request, plan, answer))

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
