"""Exploration: of a workload's requests that the learned router started above the cheapest rung
their hard limits allow, a share also runs on that cheap rung as a shadow run, judged against the
live answer, so the learner sees the region above today's floor. Off by default; its share is drawn
only among those requests; its own daily cap stops it; the hard limits are checked again, so a
REGULATED request never reaches a tier its data class forbids; the assessor judges the cheap answer
(source "explore") and keeps it out of the path's drift."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from google.protobuf.message import Message as ProtoMessage

from tests.unit.router_harness import CATALOG, RecordingPublisher, ScriptedBackend, serve_router
from tierlift.adapters import signals_from_logprobs
from tierlift.assessor._drift import DriftWatch
from tierlift.assessor._service import Assessor
from tierlift.classifier._prompt_form import NAMES
from tierlift.core.bus import Received
from tierlift.router._policy import DEFAULT_TIERS_FOR_DATA_CLASS, ExplorationPolicy, Policy, RoutingHead, build_plan
from tierlift.router._policy_source import PolicyError, PolicySource, parse_policy
from tierlift.router._shadow import EXPLORATION_REASON, MemorySpend, Shadows, answers
from tierlift.v1 import adapter_pb2, classifier_pb2, common_pb2, events_pb2, router_pb2

T = common_pb2
POLICY_YAML = (Path(__file__).parents[2] / "services/tierlift/policy/dev.yaml").read_text()
DEPLOYED = ("llamacpp-local", "vllm-local", "openai-together", "openai")
CHEAP, LIVE = "llama-3.1-8b-instruct-vllm", "gpt-5-mini"  # the cheapest LOCAL rung; the live answer's


# --- the policy ------------------------------------------------------------------------------------


def with_exploration(exploration: object) -> str:
    return POLICY_YAML.replace("workloads: {}", f"workloads: {{faq: {{exploration: {exploration}}}}}")


def test_exploration_is_off_by_default() -> None:
    assert Policy().explorations == {} and parse_policy(POLICY_YAML, "dev.yaml").explorations == {}
    policy = parse_policy(with_exploration("{share: 0.02, max_usd_per_day: '1.50'}"), "p.yaml")
    assert policy.explorations == {"faq": ExplorationPolicy(0.02, Decimal("1.50"), policy.explorations["faq"].judge)}
    assert policy.explorations["faq"].judge.method == "normalised"


@pytest.mark.parametrize(
    ("exploration", "field_named"),
    [
        ("{share: 0, max_usd_per_day: '1'}", "workloads.faq.exploration.share"),
        ("{share: 1.5, max_usd_per_day: '1'}", "workloads.faq.exploration.share"),
        ("{share: lots, max_usd_per_day: '1'}", "workloads.faq.exploration.share"),
        ("{max_usd_per_day: '1'}", "workloads.faq.exploration.share"),
        ("{share: 0.02, max_usd_per_day: 'ten'}", "workloads.faq.exploration.max_usd_per_day"),
        ("{share: 0.02}", "workloads.faq.exploration.max_usd_per_day"),
        ("{share: 0.02, max_usd_per_day: '1', rate: 3}", "workloads.faq.exploration.rate"),
        ("{share: 0.02, max_usd_per_day: '1', judge: {method: vibes}}", "workloads.faq.exploration.judge.method"),
    ],
)
def test_a_bad_exploration_is_refused_naming_the_field(exploration: str, field_named: str) -> None:
    with pytest.raises(PolicyError, match=f"p.yaml: {field_named}: "):
        parse_policy(with_exploration(exploration), "p.yaml")


# --- the router's side: which requests, how many, at what cost ------------------------------------


@dataclass
class Adapter:
    calls: list[str] = field(default_factory=list)

    async def Generate(self, request: adapter_pb2.GenerateRequest, **_: Any) -> adapter_pb2.GenerateResponse:
        self.calls.append(request.model)
        return adapter_pb2.GenerateResponse(
            text=f"answer from {request.model}", finish_reason="stop",
            usage=T.Usage(input_tokens=100, output_tokens=20), confidence=signals_from_logprobs([-0.2] * 20),
        )  # fmt: skip


@dataclass
class Rig:
    policy: Policy
    draw: random.Random = field(default_factory=lambda: random.Random(39))
    adapters: dict[str, Adapter] = field(default_factory=lambda: {name: Adapter() for name in DEPLOYED})
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    spend: MemorySpend = field(default_factory=MemorySpend)

    def __post_init__(self) -> None:
        self.shadows = Shadows(CATALOG, self.adapters, self.publisher, self.spend, draw=self.draw.random)

    async def request(
        self, prior: float, data_class: int = T.DATA_CLASS_PUBLIC, planned_by: Policy | None = None
    ) -> None:
        """One answered request of workload `faq` whose learned prior is `prior`, as the servicer
        hands it to the shadows after the caller has its answer."""
        request = router_pb2.CompleteRequest(
            tenant="acme", workload="faq", messages=[T.Message(role="user", content="What is 17 * 23?")]
        )
        classification = classifier_pb2.Classification(token_estimate=10, small_model_ok=prior)
        classification.data_class = data_class  # type: ignore[assignment]
        plan = build_plan(request, classification, CATALOG, DEPLOYED, planned_by or self.policy)
        plan.request_id = str(uuid.uuid4())
        first = plan.ladder[0]
        live = router_pb2.CompleteResponse(request_id=plan.request_id, model=first.model, tier=first.tier, text="391")
        if (shadow := self.shadows.sampled(self.policy, "faq")) is not None:
            await self.shadows.run(shadow, self.policy, request, plan, live)

    def explored(self) -> list[events_pb2.ShadowFinished]:
        return [e for _, e, _ in self.publisher.events if isinstance(e, events_pb2.ShadowFinished)]

    def calls(self) -> list[str]:
        return [model for adapter in self.adapters.values() for model in adapter.calls]


def exploring(share: float = 0.1, cap: str = "100", **policy: Any) -> Policy:
    return Policy(open_tiers_min_prior=0.5, explorations={"faq": ExplorationPolicy(share, Decimal(cap))}, **policy)


async def test_the_share_is_drawn_among_the_requests_started_above_the_cheapest_rung() -> None:
    rig = Rig(exploring(share=0.1))
    for _ in range(300):  # the prior expects the small model to do: they start on the cheapest rung
        await rig.request(prior=0.9)
    assert rig.calls() == [] and rig.explored() == []
    for _ in range(2000):  # the prior starts these on gpt-5-mini, above the LOCAL rungs
        await rig.request(prior=0.1)
    explored = rig.explored()
    assert 2000 * 0.1 - 3 * 13.4 <= len(explored) <= 2000 * 0.1 + 3 * 13.4  # within 3 sd of Binomial(2000, 0.1)
    assert set(rig.calls()) == {CHEAP}  # always the cheapest rung the prior skipped
    one = explored[0]
    assert (one.live_model, one.attempt.model, one.attempt.reason) == (LIVE, CHEAP, EXPLORATION_REASON)
    assert one.attempt.signals.has_logprobs and one.attempt.prior == 0.1 and one.attempt.confidence > 0
    assert one.answers.live_text == "391" and one.answers.shadow_text == f"answer from {CHEAP}"
    billed = [e for _, e, _ in rig.publisher.events if isinstance(e, events_pb2.AttemptFinished)]
    assert {e.kind for e in billed} == {"shadow"} and all(".explore." in e.event_id for e in billed)
    assert rig.spend.totals.keys() == {("faq.explore", next(iter(rig.spend.totals))[1])}  # its own cap's key


async def test_exploration_is_off_without_the_policy_and_leaves_the_shadows_as_they_were() -> None:
    rig = Rig(replace(exploring(), explorations={}))
    for _ in range(200):
        await rig.request(prior=0.1)
    assert rig.calls() == [] and rig.explored() == []


async def test_the_daily_cap_stops_exploration() -> None:
    run_cost = CATALOG.get(CHEAP).cost(100, 20)  # type: ignore[union-attr]  # what each run costs here
    cap = run_cost * Decimal("2.5")
    rig = Rig(exploring(share=1.0, cap=str(cap)))
    for _ in range(20):
        await rig.request(prior=0.1)
    assert len(rig.explored()) == 3  # the third starts under the cap and ends past it
    assert rig.shadows.skipped == {"explore-capped": 17}
    assert sum(rig.spend.totals.values()) <= cap + run_cost


async def test_a_regulated_request_is_never_explored_onto_a_tier_its_data_class_forbids() -> None:
    # the packaged limits: REGULATED reaches LOCAL only, so the prior never skips a rung for it
    rig = Rig(exploring(share=1.0))
    for _ in range(20):
        await rig.request(prior=0.1, data_class=T.DATA_CLASS_REGULATED)
    assert rig.calls() == [] and rig.explored() == []

    # a plan made under wider limits (say a candidate policy's) names a HOSTED_OPEN rung it skipped;
    # the limits in force forbid it for REGULATED data: the exploration run is refused before any call
    wide = {**DEFAULT_TIERS_FOR_DATA_CLASS, T.DATA_CLASS_REGULATED: frozenset({T.TIER_HOSTED_OPEN, T.TIER_CLOSED})}
    rig = Rig(exploring(share=1.0), adapters={n: Adapter() for n in ("openai-together", "openai")})
    await rig.request(prior=0.1, data_class=T.DATA_CLASS_REGULATED, planned_by=exploring(tiers_for_data_class=wide))
    assert rig.calls() == [] and rig.shadows.skipped == {"explore-excluded": 1}

    # where REGULATED may reach CLOSED and LOCAL, it is explored on LOCAL only, and its texts stay home
    local_and_closed = {
        **DEFAULT_TIERS_FOR_DATA_CLASS,
        T.DATA_CLASS_REGULATED: frozenset({T.TIER_LOCAL, T.TIER_CLOSED}),
    }
    rig = Rig(exploring(share=1.0, tiers_for_data_class=local_and_closed))
    for _ in range(10):
        await rig.request(prior=0.1, data_class=T.DATA_CLASS_REGULATED)
    assert set(rig.calls()) == {CHEAP} and len(rig.explored()) == 10
    assert all(not e.answers.text_kept and not e.answers.live_text for e in rig.explored())


async def test_the_router_explores_through_its_usual_shadow_step() -> None:
    """The servicer as it is: a workload whose own routing head starts everything above the open
    tiers gets the LOCAL rung's answer run and judged, after the caller has its answer."""
    local, closed = ScriptedBackend("llamacpp-local"), ScriptedBackend("openai")
    head = RoutingHead(weights=(0.0,) * len(NAMES), bias=-5.0, min_prior=0.5, fitted_on="test")
    policy = PolicySource(exploring(share=1.0, routing_heads={"faq": head}))
    publisher = RecordingPublisher()
    shadows = Shadows(CATALOG, {}, publisher, MemorySpend(), draw=lambda: 0.0)
    async with serve_router([local, closed], shadows=shadows, publisher=publisher, policy=policy) as router:
        request = router_pb2.CompleteRequest(
            tenant="acme", workload="faq", messages=[T.Message(role="user", content="What is the capital of France?")]
        )
        reply = await router.Complete(request)
        for _ in range(100):
            if finished := [e for _, e, _ in publisher.events if isinstance(e, events_pb2.ShadowFinished)]:
                break
            await asyncio.sleep(0.02)
    assert reply.attempts[0].tier == T.TIER_CLOSED  # the learned router started it above LOCAL
    [explored] = finished
    assert explored.attempt.model == "gemma-3-270m-cpu" and explored.attempt.reason == EXPLORATION_REASON
    assert explored.live_model == reply.model and local.calls == ["gemma-3-270m-cpu"]


# --- the assessor's side: the cheap answer is the one judged ---------------------------------------


@dataclass
class Bus:
    published: list[tuple[str, ProtoMessage]] = field(default_factory=list)

    def producer_problem(self, received: Received) -> str:
        return ""

    async def publish(self, subject: str, event: ProtoMessage, event_id: str, ttl_s: float | None = None) -> None:
        self.published.append((subject, event))


def finished(reason: str, live: str, shadow: str) -> Received:
    request = router_pb2.CompleteRequest(messages=[T.Message(role="user", content="What is 17 * 23?")])
    event = events_pb2.ShadowFinished(
        event_id="r1.explore.cheap.finished", request_id="r1", tenant="acme", workload="faq", live_model=LIVE,
        attempt=router_pb2.Attempt(model=CHEAP, reason=reason), judge=events_pb2.JudgeSpec(method="normalised"),
        answers=answers(request, live, shadow, text_kept=True),
    )  # fmt: skip
    return Received(msg=SimpleNamespace(data=event.SerializeToString()), context=None)  # type: ignore[arg-type]


async def test_the_assessor_judges_the_explored_answer_against_the_live_one_and_keeps_it_out_of_drift() -> None:
    bus, drift = Bus(), DriftWatch(window=1, floor=0.6)
    assessor = Assessor(bus, drift)  # type: ignore[arg-type]
    await assessor._one(finished(EXPLORATION_REASON, live="391", shadow="392"))
    [(_, scored)] = bus.published
    assert isinstance(scored, events_pb2.QualityScored)
    assert (scored.model, scored.reference_model, scored.source, scored.score) == (CHEAP, LIVE, "explore", 0.0)
    # an ordinary shadow run is still the live path's verdict, and its drift (window 1: one miss alerts)
    await assessor._one(finished("shadow run for the assessor", live="391", shadow="392"))
    scored = bus.published[1][1]
    assert (scored.model, scored.source) == (LIVE, "shadow")  # type: ignore[attr-defined]
    assert [type(e).__name__ for _, e in bus.published[2:]] == ["QualityAlert"]
