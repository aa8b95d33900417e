"""Shadow runs: for a sample of a workload's requests, after the caller has its answer, the same
messages go to each of the workload's shadow (reference) models, and the two answers go to the
assessor to compare. Off the hot path (a background task the caller never waits for), under the
same hard limits as live traffic (data class, region, licence, the request's own tier limits),
priced as their own kind and stopped by a daily cap per workload that every router shares (a run
counts its most possible cost before it starts, so the cap holds with runs in flight). Each run's
provider call is written ahead, as a live one is: a run whose adapter dies mid-call is billed at
its worst case, unsettled (router/_attempts.py `call_fault`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message as ProtoMessage
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from tierlift.core import bus, money
from tierlift.core.catalog import Catalog
from tierlift.core.logging import get_logger
from tierlift.core.nats_access import EventSigner
from tierlift.core.sealing import seal
from tierlift.core.signed_bucket import SignedBucket
from tierlift.core.text_match import normalise, sha256
from tierlift.core.tokens import estimate_tokens
from tierlift.router import _events as events
from tierlift.router._attempts import call_fault, worst_case_attempt
from tierlift.router._policy import DEFAULT_OUTPUT_TOKENS, Policy, ShadowPolicy, shadow_exclusion
from tierlift.v1 import adapter_pb2, adapter_pb2_grpc, common_pb2, events_pb2, router_pb2

log = get_logger(__name__)


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
        """The workload's shadow policy if this request is drawn for a shadow run, else None."""
        shadow = policy.shadows.get(workload)
        return shadow if shadow is not None and self.draw() < shadow.sample else None

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
        finally:
            self.pending -= 1

    def _skip(self, reason: str, request_id: str, model_id: str) -> None:
        self.skipped[reason.split(":", 1)[0]] = self.skipped.get(reason.split(":", 1)[0], 0) + 1
        log.info("shadow_skipped", request_id=request_id, model=model_id, reason=reason)

    async def _one(
        self,
        model_id: str,
        shadow: ShadowPolicy,
        policy: Policy,
        request: router_pb2.CompleteRequest,
        plan: router_pb2.RoutingPlan,
        live: router_pb2.CompleteResponse,
    ) -> None:
        model = self.catalog.get(model_id)
        if model is None:
            return self._skip(f"unknown: {model_id} is not in the catalog", plan.request_id, model_id)
        if model_id == live.model:
            return self._skip("same: the live answer came from this model", plan.request_id, model_id)
        if shadow.live_model and live.model != shadow.live_model:
            return self._skip(f"other: {live.model} answered, not {shadow.live_model}", plan.request_id, model_id)
        data_class = plan.classification.data_class
        tokens = estimate_tokens("".join(m.content for m in request.messages))
        if why := shadow_exclusion(model, policy, request, self.adapters.keys(), data_class, tokens):
            return self._skip(f"excluded: {why}", plan.request_id, model_id)
        day = datetime.now(UTC).date().isoformat()
        spend_key = shadow.spend_key or request.workload
        if await self.spend.spent(spend_key, day) >= shadow.max_usd_per_day:
            return self._skip(f"capped: {shadow.max_usd_per_day} USD/day reached", plan.request_id, model_id)

        # the run's most it could cost is counted before the call, so runs in flight together
        # cannot all pass the cap; the difference to the real cost is settled after
        reserved = model.cost(tokens, request.params.max_tokens or DEFAULT_OUTPUT_TOKENS)
        await self.spend.add(spend_key, day, reserved)
        generate = adapter_pb2.GenerateRequest(
            model=model_id, messages=request.messages, params=request.params, request_id=plan.request_id
        )
        rung = router_pb2.Rung(tier=model.tier_value, model=model_id, adapter=model.adapter)
        event_id = f"{plan.request_id}.shadow.{model_id}"
        worst = worst_case_attempt(0, rung, request, self.catalog)
        await events.write_ahead(self.publisher, billed(plan.request_id, request, worst), self.timeout_s)
        try:
            result = await self.adapters[model.adapter].Generate(generate, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            fault = call_fault(0, rung, exc, request, self.catalog)
            if not fault.unsettled:  # no cost: its record closed, its reservation back
                await self.spend.add(spend_key, day, -reserved)
                await self.publisher.publish(bus.SUBJECT_ATTEMPT, billed(plan.request_id, request, fault), event_id)
            return self._skip(f"fault: {exc.code().name}", plan.request_id, model_id)
        cost = model.usage_cost(result.usage).total
        await self.spend.add(spend_key, day, cost - reserved)
        attempt = router_pb2.Attempt(
            index=0, tier=model.tier_value, model=model_id, adapter=model.adapter,
            outcome=router_pb2.OUTCOME_ANSWERED, usage=result.usage, cost_usd=money.to_wire(cost),
            latency_ms=result.latency_ms, reason="shadow run for the assessor",
        )  # fmt: skip
        await self.publisher.publish(bus.SUBJECT_ATTEMPT, billed(plan.request_id, request, attempt), event_id)
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


def billed(
    request_id: str, request: router_pb2.CompleteRequest, attempt: router_pb2.Attempt
) -> events_pb2.AttemptFinished:
    """A shadow run's attempt as the ledger bills it: its own kind, one event id per model."""
    event = events_pb2.AttemptFinished(
        event_id=f"{request_id}.shadow.{attempt.model}", request_id=request_id, tenant=request.tenant,
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
