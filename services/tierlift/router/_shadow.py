"""Shadow runs: for a sample of a workload's requests, after the caller has its answer, the same
messages go to each of the workload's shadow (reference) models, and the two answers go to the
assessor to compare. Off the hot path (a background task the caller never waits for), under the
same hard limits as live traffic (data class, region, licence, the request's own tier limits),
priced as their own kind and stopped by a daily cap per workload that every router shares (a run
counts its most possible cost before it starts, so the cap holds with runs in flight). Each run's
provider call is written ahead, as a live one is: a run whose adapter dies mid-call is billed at
its worst case, unsettled (router/_attempts.py `call_fault`).

Exploration (a workload's `exploration` in the policy, off by default): of the requests the learned
router started above the cheapest rung their hard limits allow, a share also runs on that cheap
rung, the same way, with the live answer as its reference, under a daily cap of its own; the
assessor judges the cheap answer (source "explore"), so the learner sees the region above today's
floor. The share is drawn only among those requests, and the hard limits are checked again."""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message as ProtoMessage
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from tierlift.core import bus, money
from tierlift.core.catalog import Catalog, Model
from tierlift.core.logging import get_logger
from tierlift.core.nats_access import EventSigner
from tierlift.core.sealing import seal
from tierlift.core.signed_bucket import SignedBucket
from tierlift.core.text_match import normalise, sha256
from tierlift.core.tokens import estimate_tokens
from tierlift.router import _events as events
from tierlift.router._attempts import call_fault, worst_case_attempt
from tierlift.router._confidence import score
from tierlift.router._policy import (
    DEFAULT_OUTPUT_TOKENS,
    ExplorationPolicy,
    Policy,
    ShadowPolicy,
    explorable,
    shadow_exclusion,
)
from tierlift.v1 import adapter_pb2, adapter_pb2_grpc, classifier_pb2, common_pb2, events_pb2, router_pb2

log = get_logger(__name__)
# the attempt reason that marks an exploration run (the assessor judges its answer, not the live one)
EXPLORATION_REASON = "exploration: the cheap rung the learned router skipped, for the learner"
SHADOW_REASON = "shadow run for the assessor"
# what `sampled` hands back for a request of a workload that explores but was not drawn for a
# shadow run: whether it is explored needs its plan, which `run` has
_NO_SHADOW = ShadowPolicy(sample=0.0, models=(), max_usd_per_day=Decimal(0), judge=events_pb2.JudgeSpec())


class ShadowPublisher(Protocol):
    async def publish(self, subject: str, event: ProtoMessage, event_id: str, ttl_s: float | None = None) -> None: ...


class ShadowSpend(Protocol):
    """Shadow spend per workload and UTC day, shared by the routers."""

    async def spent(self, workload: str, day: str) -> Decimal: ...

    async def add(self, workload: str, day: str, amount: Decimal) -> None: ...


@dataclass
class MemorySpend:
    """One router's count (tests, a single replica)."""

    totals: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    async def spent(self, workload: str, day: str) -> Decimal:
        return self.totals.get((workload, day), Decimal(0))

    async def add(self, workload: str, day: str, amount: Decimal) -> None:
        self.totals[workload, day] = self.totals.get((workload, day), Decimal(0)) + amount


SPEND_BUCKET = "TIERLIFT_SHADOW_SPEND"


class JetStreamSpend:
    """The daily shadow spend every router shares: one key per workload and day in a JetStream
    key-value bucket, added to with compare-and-set."""

    def __init__(self, kv: object) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, signer: EventSigner | None = None) -> JetStreamSpend:
        return cls(await SignedBucket.open(js, SPEND_BUCKET, signer))

    async def _entry(self, key: str) -> tuple[Decimal, int | None]:
        try:
            entry = await self.kv.get(key)  # type: ignore[attr-defined]
        except KeyNotFoundError:
            return Decimal(0), None
        return Decimal((entry.value or b"0").decode()), entry.revision

    async def spent(self, workload: str, day: str) -> Decimal:
        return (await self._entry(f"{workload}.{day}"))[0]

    async def add(self, workload: str, day: str, amount: Decimal) -> None:
        key = f"{workload}.{day}"
        for _ in range(20):  # another router added in between: read again
            total, revision = await self._entry(key)
            value = str(total + amount).encode()
            try:
                if revision is None:
                    await self.kv.create(key, value)  # type: ignore[attr-defined]
                else:
                    await self.kv.update(key, value, last=revision)  # type: ignore[attr-defined]
                return
            except KeyWrongLastSequenceError:
                continue
        log.warning("shadow_spend_not_counted", workload=workload, amount=str(amount))


@dataclass
class Shadows:
    catalog: Catalog
    adapters: Mapping[str, adapter_pb2_grpc.ModelAdapterStub]
    publisher: ShadowPublisher
    spend: ShadowSpend = field(default_factory=MemorySpend)
    timeout_s: float = 60.0
    draw: Callable[[], float] = random.random
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count, for tests and logs
    pending: int = 0  # sampled requests whose shadow runs have not finished
    # the assessor's public nkey: texts cross the bus sealed to it ("" = a bus without NATS users)
    seal_to: str = ""

    def sampled(self, policy: Policy, workload: str) -> ShadowPolicy | None:
        """The workload's shadow policy if this request is drawn for a shadow run, else None; for a
        workload that explores, always a policy carrying its exploration (`run` decides on it)."""
        shadow = policy.shadows.get(workload)
        drawn = shadow if shadow is not None and self.draw() < shadow.sample else None
        exploration = policy.explorations.get(workload)
        return drawn if exploration is None else replace(drawn or _NO_SHADOW, exploration=exploration)

    def run(
        self,
        shadow: ShadowPolicy,
        policy: Policy,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        live: router_pb2.CompleteResponse,
    ) -> Coroutine[Any, Any, None]:
        """The shadow work for a sampled request, for the caller to run in the background."""
        self.pending += 1
        return self._run(shadow, policy, request, plan, live)

    async def _run(
        self,
        shadow: ShadowPolicy,
        policy: Policy,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        live: router_pb2.CompleteResponse,
    ) -> None:
        """Every shadow model in turn; one failing does not stop the others."""
        try:
            for model_id in shadow.models:
                try:
                    await self._one(model_id, shadow, policy, request, plan, live)
                except Exception:
                    log.exception("shadow_failed", request_id=plan.request_id, model=model_id)
            if shadow.exploration is not None:
                try:
                    await self._explore(shadow.exploration, policy, request, plan, live)
                except Exception:
                    log.exception("exploration_failed", request_id=plan.request_id)
        finally:
            self.pending -= 1

    async def _explore(
        self,
        exploration: ExplorationPolicy,
        policy: Policy,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        live: router_pb2.CompleteResponse,
    ) -> None:
        """The cheap rung the learned router skipped, for a `share` of the requests it skipped one."""
        model = explorable(plan, self.catalog)
        if model is None or model.id == live.model:
            return  # it started on the cheapest rung it was allowed: nothing above the floor to learn
        if self.draw() >= exploration.share:
            return
        explored = ShadowPolicy(
            sample=exploration.share, models=(model.id,), max_usd_per_day=exploration.max_usd_per_day,
            judge=exploration.judge, spend_key=f"{request.workload}.explore",
        )  # fmt: skip
        await self._one(model.id, explored, policy, request, plan, live, explore=True)

    def _skip(self, reason: str, request_id: str, model_id: str, explore: bool = False) -> None:
        key = ("explore-" if explore else "") + reason.split(":", 1)[0]
        self.skipped[key] = self.skipped.get(key, 0) + 1
        event = "exploration_skipped" if explore else "shadow_skipped"
        log.info(event, request_id=request_id, model=model_id, reason=reason)

    async def _one(
        self,
        model_id: str,
        shadow: ShadowPolicy,
        policy: Policy,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        live: router_pb2.CompleteResponse,
        explore: bool = False,
    ) -> None:
        def skip(reason: str) -> None:
            self._skip(reason, plan.request_id, model_id, explore)

        model = self.catalog.get(model_id)
        if model is None:
            return skip(f"unknown: {model_id} is not in the catalog")
        if model_id == live.model:
            return skip("same: the live answer came from this model")
        if shadow.live_model and live.model != shadow.live_model:
            return skip(f"other: {live.model} answered, not {shadow.live_model}")
        data_class = plan.classification.data_class
        tokens = estimate_tokens("".join(m.content for m in request.messages))
        if why := shadow_exclusion(model, policy, request, self.adapters.keys(), data_class, tokens):
            return skip(f"excluded: {why}")
        day = datetime.now(UTC).date().isoformat()
        spend_key = shadow.spend_key or request.workload
        if await self.spend.spent(spend_key, day) >= shadow.max_usd_per_day:
            return skip(f"capped: {shadow.max_usd_per_day} USD/day reached")

        # the run's most it could cost is counted before the call, so runs in flight together
        # cannot all pass the cap; the difference to the real cost is settled after
        reserved = model.cost(tokens, request.params.max_tokens or DEFAULT_OUTPUT_TOKENS)
        await self.spend.add(spend_key, day, reserved)
        generate = adapter_pb2.GenerateRequest(
            model=model_id, messages=request.messages, params=request.params, request_id=plan.request_id
        )
        rung = router_pb2.Rung(tier=model.tier_value, model=model_id, adapter=model.adapter)
        event_id = f"{plan.request_id}.{'explore' if explore else 'shadow'}.{model_id}"
        worst = worst_case_attempt(0, rung, request, self.catalog)
        await events.write_ahead(self.publisher, billed(plan.request_id, request, worst, event_id), self.timeout_s)
        try:
            result = await self.adapters[model.adapter].Generate(generate, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            fault = call_fault(0, rung, exc, request, self.catalog)
            if not fault.unsettled:  # no cost: its record closed, its reservation back
                await self.spend.add(spend_key, day, -reserved)
                await self.publisher.publish(
                    bus.SUBJECT_ATTEMPT, billed(plan.request_id, request, fault, event_id), event_id
                )
            return skip(f"fault: {exc.code().name}")
        cost = model.usage_cost(result.usage).total
        await self.spend.add(spend_key, day, cost - reserved)
        attempt = _answered(model, result, cost, policy, plan.classification, explore)
        await self.publisher.publish(bus.SUBJECT_ATTEMPT, billed(plan.request_id, request, attempt, event_id), event_id)
        finished = events_pb2.ShadowFinished(
            event_id=f"{event_id}.finished", request_id=plan.request_id, attempt=attempt, tenant=request.tenant,
            workload=request.workload, live_model=live.model, live_tier=live.tier, data_class=data_class,
            judge=shadow.judge, answers=answers(request, live.text, result.text, keep_text(shadow, data_class)),
            rollout_id=shadow.rollout_id, candidate_is_live=shadow.candidate_is_live,
        )  # fmt: skip
        if self.seal_to:  # only the assessor can read the texts, wherever the event is stored
            finished.sealed_answers = seal(finished.answers.SerializeToString(), self.seal_to)
            finished.ClearField("answers")
        finished.occurred_at.GetCurrentTime()
        await self.publisher.publish(bus.SUBJECT_SHADOW, finished, finished.event_id, ttl_s=policy.text_retention_s)


def _answered(
    model: Model,
    result: adapter_pb2.GenerateResponse,
    cost: Decimal,
    policy: Policy,
    classification: classifier_pb2.Classification,
    explore: bool,
) -> router_pb2.Attempt:
    """A run's answering attempt; an exploration run's also with what the learner reads besides the
    verdict: the answer's confidence signals, and the prior and confidence the router gave it."""
    attempt = router_pb2.Attempt(
        index=0, tier=model.tier_value, model=model.id, adapter=model.adapter, outcome=router_pb2.OUTCOME_ANSWERED,
        usage=result.usage, cost_usd=money.to_wire(cost), latency_ms=result.latency_ms,
        reason=EXPLORATION_REASON if explore else SHADOW_REASON,
    )  # fmt: skip
    if explore:
        attempt.signals.CopyFrom(result.confidence)
        attempt.prior = policy.prior(model.tier_value, classification)
        attempt.confidence = score(result.confidence, attempt.prior, model.id, policy.confidence_model)
    return attempt


def billed(
    request_id: str, request: router_pb2.CompleteRequest, attempt: router_pb2.Attempt, event_id: str = ""
) -> events_pb2.AttemptFinished:
    """A shadow run's attempt as the ledger bills it: its own kind, one event id per model (and per
    purpose: an exploration run's is `<request>.explore.<model>`)."""
    event = events_pb2.AttemptFinished(
        event_id=event_id or f"{request_id}.shadow.{attempt.model}", request_id=request_id, tenant=request.tenant,
        workload=request.workload, attempt=attempt, kind="shadow",
    )  # fmt: skip
    event.occurred_at.GetCurrentTime()
    return event


def keep_text(shadow: ShadowPolicy, data_class: int) -> bool:
    return data_class != common_pb2.DATA_CLASS_REGULATED or shadow.keep_regulated_text


def answers(request: router_pb2.CompleteRequest, live: str, other: str, text_kept: bool) -> events_pb2.Answers:
    """Digests always (exact and normalised judging need no text); texts only where kept."""
    compared = events_pb2.Answers(
        live_sha256=sha256(live), shadow_sha256=sha256(other),
        live_normalised_sha256=sha256(normalise(live)), shadow_normalised_sha256=sha256(normalise(other)),
        text_kept=text_kept,
    )  # fmt: skip
    if text_kept:
        compared.messages.extend(request.messages)
        compared.live_text, compared.shadow_text = live, other
    return compared
