"""Property: whatever the request, the policy and the rollout under way, no attempt of a request is
ever made on a tier its effective data class forbids, nor on a model whose licence or regions
exclude the request's region (an EU tenant never reaches Llama 4, nor a US endpoint of Bedrock or
Vertex AI), faults, escalation, shadow runs, rollout cohorts and rollout comparisons included; and
a rollout's candidate serves only its own arm.

Every adapter of the dev catalog runs in process with a scripted backend whose failures and
confidence Hypothesis chooses; the real classifier labels the prompts. The backends' own call
logs are the evidence, not the router's account of itself."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import grpc
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.router_harness import CATALOG, RecordingPublisher, ScriptedBackend, serve_router
from tierlift.core.catalog import cloud_geography
from tierlift.router import Policy
from tierlift.router._policy import ShadowPolicy
from tierlift.router._policy_source import PolicySource
from tierlift.router._rollouts import CANDIDATE, MOVING, RolloutBook, candidate_percent
from tierlift.router._shadow import Shadows
from tierlift.v1 import common_pb2, router_pb2, router_pb2_grpc
from tierlift.v1.events_pb2 import Guardrails, JudgeSpec, RolloutState, ShadowFinished

T = common_pb2
DEV_POLICY = Path(__file__).parents[2] / "services/tierlift/policy/dev.yaml"
TIERS = [T.TIER_LOCAL, T.TIER_HOSTED_OPEN, T.TIER_CLOSED, T.TIER_FRONTIER]
DATA_CLASSES = [T.DATA_CLASS_PUBLIC, T.DATA_CLASS_INTERNAL, T.DATA_CLASS_CONFIDENTIAL, T.DATA_CLASS_REGULATED]
TIER_OF_MODEL = {m.id: m.tier_value for m in CATALOG.models}
ADAPTERS = sorted({m.adapter for m in CATALOG.models})
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about autumn.",
    "Refund card 4111 1111 1111 1111 for the customer.",
    "The patient was diagnosed with epilepsy; draft the letter.",
    "Mail jane.doe@example.com the contract.",
    "Transfer 300 EUR to DE89 3704 0044 0532 0130 00.",
    "Prove that the square root of 2 is irrational, step by step.",
]
FAULTS = [None, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL]


@dataclass
class Running:
    router: router_pb2_grpc.RouterStub
    backends: list[ScriptedBackend]
    policy: PolicySource
    shadows: Shadows
    rollouts: RolloutBook
    arms: dict[str, int] = field(default_factory=dict)  # plans per rollout arm, to show the split was tried
    regional_calls: dict[str, int] = field(default_factory=dict)  # regional-cloud calls per request region


tier_sets = st.frozensets(st.sampled_from(TIERS))
policies = st.builds(
    lambda allowed, threshold, shadow_models: Policy(
        tiers_for_data_class=dict(zip(DATA_CLASSES, allowed, strict=True)),
        confidence_threshold=threshold,
        shadows={"prop": ShadowPolicy(1.0, tuple(shadow_models), Decimal(1000), JudgeSpec(method="exact"))},
    ),
    st.tuples(tier_sets, tier_sets, tier_sets, tier_sets),
    st.floats(0.0, 1.0),
    st.lists(st.sampled_from(sorted(TIER_OF_MODEL)), min_size=1, max_size=3, unique=True),
)
requests = st.builds(
    lambda prompt, declared, allowed_tiers, region, stream, cohort: (
        router_pb2.CompleteRequest(
            tenant="acme",
            workload="prop",
            messages=[T.Message(role="user", content=prompt)],
            constraints=router_pb2.Constraints(data_class=declared, allowed_tiers=sorted(allowed_tiers), region=region),
            cohort_key=cohort,
        ),
        stream,
    ),
    st.sampled_from(PROMPTS),
    st.sampled_from([T.DATA_CLASS_UNSPECIFIED, *DATA_CLASSES]),
    tier_sets,
    st.sampled_from(["", "us", "eu"]),
    st.booleans(),
    st.text(max_size=12),
)
MODEL_IDS = sorted(TIER_OF_MODEL)
# a rollout on every example (ended ones split too); the control is often the local model, which most
# ladders hold, so both arms come up often enough to show the property is not vacuous
rollouts = st.builds(
    lambda control, candidate, stage, status: RolloutState(
        rollout_id="prop-1",
        workload="prop",
        from_model=control,
        to_model=candidate,
        stages=[0, 5, 25, 50, 75, 100],
        stage_index=stage,
        status=status,
        guardrails=Guardrails(shadow_sample=1.0),
        judge=JudgeSpec(method="exact"),
        revision=1,
    ),
    st.one_of(st.just("gemma-3-270m-cpu"), st.sampled_from(MODEL_IDS)),
    st.sampled_from(MODEL_IDS),
    st.integers(0, 5),
    st.sampled_from(["running", "paused", "completed", "completed", "rolled_back", "aborted"]),
).filter(lambda r: r.from_model != r.to_model)
# a policy canary whose candidate tries to send every data class to every tier: the limits in
# force must still hold on its arm
WIDENED = yaml.safe_dump(
    yaml.safe_load(DEV_POLICY.read_text())
    | {"version": "widened", "data_classes": {dc: ["LOCAL", "HOSTED_OPEN", "CLOSED", "FRONTIER"]
                                              for dc in ("PUBLIC", "INTERNAL", "CONFIDENTIAL", "REGULATED")}}
)  # fmt: skip
policy_rollouts = st.builds(
    lambda percent: RolloutState(
        rollout_id="prop-policy",
        workload="prop",
        stages=[percent, 100],
        stage_index=0,
        status="running",
        guardrails=Guardrails(shadow_sample=1.0),
        candidate_policy=WIDENED,
        candidate_policy_version="widened",
        revision=1,
    ),
    st.sampled_from([5, 50, 99]),
)
rollouts = st.one_of(rollouts, policy_rollouts)
# one behaviour per adapter, so every backend's call log is reset between examples
behaviours = st.lists(
    st.tuples(st.sampled_from(FAULTS), st.floats(0.05, 0.99)), min_size=len(ADAPTERS), max_size=len(ADAPTERS)
)


async def scenario(
    running: Running,
    policy: Policy,
    request: router_pb2.CompleteRequest,
    stream: bool,
    behaviour: list[tuple[grpc.StatusCode | None, float]],
    rollout: RolloutState | None = None,
) -> None:
    running.policy.current = policy
    running.rollouts.by_workload.clear()
    if rollout is not None:
        running.rollouts.apply(rollout)
    for backend, (fault, prob) in zip(running.backends, behaviour, strict=True):
        backend.fail_with, backend.token_prob, backend.calls = fault, prob, []
    effective = None
    try:
        plan = await running.router.Plan(request)
        effective = plan.classification.data_class
        running.arms[plan.arm] = running.arms.get(plan.arm, 0) + 1
        # the candidate serves its own arm only, once it has one (a shadow-only stage moves nothing)
        moving = rollout is not None and not (rollout.status in MOVING and candidate_percent(rollout) == 0)
        if rollout is not None and moving and not rollout.candidate_policy and plan.arm != CANDIDATE:
            assert rollout.to_model not in [r.model for r in plan.ladder], plan.reasons
        if stream:
            async for _ in running.router.CompleteStream(request):
                pass
        else:
            await running.router.Complete(request)
    except grpc.aio.AioRpcError as exc:
        assert exc.code() in {
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.INTERNAL,
        }, exc
    for _ in range(500):  # until every shadow run the request started has finished
        if not running.shadows.pending:
            break
        await asyncio.sleep(0.01)
    called = {TIER_OF_MODEL[m] for b in running.backends for m in b.calls}
    region = request.constraints.region
    for model_id in {m for b in running.backends for m in b.calls}:  # region and licence limits too
        model = CATALOG.get(model_id)
        assert model is not None
        assert not region or region not in model.licence.excluded_regions, f"{model_id}'s licence excludes {region}"
        assert not region or "any" in model.regions or region in model.regions, f"{model_id} does not run in {region}"
        if region and model.cloud_region:  # Bedrock, Vertex AI: the endpoint called is in the request's region
            assert cloud_geography(model.cloud_region) == region, f"{model_id} calls {model.cloud_region}"
            running.regional_calls[region] = running.regional_calls.get(region, 0) + 1
    if effective is None:  # refused before planning: nothing may have been called
        assert not called
        return
    assert effective >= max(request.constraints.data_class, T.DATA_CLASS_PUBLIC)
    forbidden = called - policy.tiers_for_data_class[effective]
    assert not forbidden, f"{T.DataClass.Name(effective)} reached {[T.Tier.Name(t) for t in forbidden]}"


def test_no_attempt_is_ever_made_on_a_tier_the_data_class_forbids() -> None:
    backends = [ScriptedBackend(a) for a in ADAPTERS]
    policy = PolicySource(Policy())
    publisher = RecordingPublisher()
    shadows = Shadows(CATALOG, {}, publisher, draw=lambda: 0.0)  # every answered request is shadowed
    book = RolloutBook()
    loop = asyncio.new_event_loop()
    servers = AsyncExitStack()
    router = loop.run_until_complete(
        servers.enter_async_context(
            serve_router(
                backends,
                shadows=shadows,
                publisher=publisher,
                policy=policy,
                attempt_timeout_s=5,
                circuit_threshold=1000,  # keep every rung callable: the property must hold when they are tried
                rollouts=book,
            )
        )
    )
    running = Running(router, backends, policy, shadows, book)
    try:

        @settings(max_examples=160, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(policy=policies, request=requests, behaviour=behaviours, rollout=rollouts)
        def check(
            policy: Policy,
            request: tuple[router_pb2.CompleteRequest, bool],
            behaviour: list[tuple[grpc.StatusCode | None, float]],
            rollout: RolloutState,
        ) -> None:
            loop.run_until_complete(scenario(running, policy, request[0], request[1], behaviour, rollout))

        check()
        # The regional clouds, for certain: random examples reach them in each region only most of
        # the time. Every tier open, the regional entries as shadows, a request from each region:
        # the same checks apply (each call in the request's own geography, the rest held back).
        regional = tuple(sorted(m.id for m in CATALOG.models if m.cloud_region))
        everything = Policy(
            tiers_for_data_class={dc: frozenset(TIERS) for dc in DATA_CLASSES},
            shadows={"prop": ShadowPolicy(1.0, regional, Decimal(1000), JudgeSpec(method="exact"))},
        )
        for region in ("eu", "us"):
            asked = router_pb2.CompleteRequest(
                tenant="acme", workload="prop", messages=[T.Message(role="user", content="What is 2 + 2?")],
                constraints=router_pb2.Constraints(region=region),
            )  # fmt: skip
            loop.run_until_complete(scenario(running, everything, asked, False, [(None, 0.9)] * len(ADAPTERS)))
        # not vacuous: shadows ran, and some were held back by the data class
        assert any(isinstance(e, ShadowFinished) for _, e, _ in publisher.events)
        assert shadows.skipped.get("excluded", 0) > 0
        # and rollouts split traffic: some plans fell in each arm
        assert running.arms.get(CANDIDATE, 0) > 0 and running.arms.get("control", 0) > 0, running.arms
        # and EU and US requests reached the regional clouds (Bedrock, Vertex AI) in their own region
        assert running.regional_calls.get("eu", 0) > 0 and running.regional_calls.get("us", 0) > 0, (
            running.regional_calls
        )
    finally:
        loop.run_until_complete(servers.aclose())
        loop.close()
