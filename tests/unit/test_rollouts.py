"""Rollouts in pieces: the router's split (cohorts, arms, ladders), the controller's statistics
and decisions, and the controller's refusals and transitions against a recording bus."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message as ProtoMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.router_harness import CATALOG
from tests.unit.test_rpc_fuzz import NEVER, messages
from tierlift.assessor._rollout_stats import HOLDS, WAITING, decide, quantile_bounds, wilson
from tierlift.assessor._rollouts import RolloutConflict, RolloutController, RolloutError, RolloutNotFound
from tierlift.assessor._servicer import AssessorServicer
from tierlift.core import bus as bus_module
from tierlift.core.grpc_server import ServerCalls
from tierlift.router._policy import Policy, build_plan
from tierlift.router._rollouts import (
    CANDIDATE,
    CONTROL,
    RolloutBook,
    candidate_percent,
    cohort_point,
    comparison,
    policy_in_play,
    split,
)
from tierlift.v1 import assessor_pb2, assessor_pb2_grpc, classifier_pb2, common_pb2, events_pb2, ledger_pb2, router_pb2

T = common_pb2
DEPLOYED = {m.adapter for m in CATALOG.models}
CONTROL_MODEL, CANDIDATE_MODEL = "gpt-5-mini", "llama-3.3-70b-instruct-together"


def state(percent_index: int = 1, status: str = "running", **rails: Any) -> events_pb2.RolloutState:
    s = events_pb2.RolloutState(
        rollout_id="qa-1", workload="qa", from_model=CONTROL_MODEL, to_model=CANDIDATE_MODEL,
        stages=[0, 5, 25, 50, 75, 100], stage_index=percent_index, status=status,
        guardrails=events_pb2.Guardrails(min_samples=10, max_quality_drop=0.2, max_error_rate=0.2, shadow_sample=1.0,
                                         **rails),
        judge=events_pb2.JudgeSpec(method="normalised"), revision=1,
    )  # fmt: skip
    s.started_at.FromSeconds(1_000)
    s.stage_started_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    return s


def planned(data_class: int = T.DATA_CLASS_PUBLIC, cohort: str = "user-1", region: str = "") -> router_pb2.RoutingPlan:
    request = router_pb2.CompleteRequest(
        tenant="acme", workload="qa", messages=[T.Message(role="user", content="hi")], cohort_key=cohort,
        constraints=router_pb2.Constraints(region=region),
    )  # fmt: skip
    classification = classifier_pb2.Classification(data_class=data_class, token_estimate=10)
    # from the closed tier up: the control is the ladder's first rung, as when a workload moves off an API
    request.constraints.allowed_tiers.extend([T.TIER_HOSTED_OPEN, T.TIER_CLOSED, T.TIER_FRONTIER])
    plan = build_plan(request, classification, CATALOG, DEPLOYED, Policy())
    plan.request_id = "r-1"
    return plan, request  # type: ignore[return-value]


def ladder(plan: router_pb2.RoutingPlan) -> list[str]:
    return [r.model for r in plan.ladder]


def arm_of(key: str, s: events_pb2.RolloutState) -> str:
    plan, request = planned(cohort=key)  # type: ignore[misc]
    split(plan, request, s, CATALOG)
    return plan.arm


def test_a_cohort_key_keeps_its_arm_as_the_rollout_widens() -> None:
    keys = [f"user-{i}" for i in range(400)]
    at = {i: {k for k in keys if arm_of(k, state(i)) == CANDIDATE} for i in range(6)}
    assert not at[0] and at[5] == set(keys)
    for narrower, wider in zip(range(5), range(1, 6), strict=True):
        assert at[narrower] <= at[wider]  # nobody moves back to the control as the share grows


def test_the_candidate_share_follows_the_stage() -> None:
    points = [cohort_point("acme", "qa", f"user-{i}") for i in range(20_000)]
    for percent in (5, 25, 50, 75):
        share = sum(p < percent for p in points) / len(points)
        assert abs(share - percent / 100) < 0.01


def test_the_candidate_arm_puts_the_candidate_where_the_control_stood_with_the_control_as_fallback() -> None:
    s = state(5)
    plan, request = planned()  # type: ignore[misc]
    before = ladder(plan)
    split(plan, request, s, CATALOG)
    assert plan.arm == CANDIDATE and plan.rollout_id == "qa-1"
    rungs = ladder(plan)
    assert rungs[rungs.index(CANDIDATE_MODEL) + 1] == CONTROL_MODEL
    assert sorted(rungs) == sorted(before)  # nothing added that the plan had not allowed


def test_the_control_arm_never_reaches_the_candidate() -> None:
    control_cohort = next(k for k in (f"user-{i}" for i in range(100)) if cohort_point("acme", "qa", k) >= 5)
    plan, request = planned(cohort=control_cohort)  # type: ignore[misc]
    split(plan, request, state(1), CATALOG)  # 5%: the candidate has an arm of its own
    assert plan.arm == CONTROL and CANDIDATE_MODEL not in ladder(plan)
    assert any("control arm" in e.reason for e in plan.excluded if e.model == CANDIDATE_MODEL)


def test_a_shadow_only_stage_keeps_the_candidate_on_the_live_ladder_behind_its_control() -> None:
    plan, request = planned()  # type: ignore[misc]
    before = ladder(plan)
    assert CANDIDATE_MODEL in before and CONTROL_MODEL in before  # the candidate has a place of its own
    for status in ("running", "paused"):
        plan, request = planned()  # type: ignore[misc]
        split(plan, request, state(0, status), CATALOG)  # stage 0: the candidate is only compared
        after = ladder(plan)
        assert sorted(after) == sorted(before) and CANDIDATE_MODEL not in [e.model for e in plan.excluded]
        assert after.index(CANDIDATE_MODEL) == after.index(CONTROL_MODEL) + 1  # compared with the control's answers
        others = [m for m in before if m != CANDIDATE_MODEL]
        assert [m for m in after if m != CANDIDATE_MODEL] == others  # everything else as planned
        assert (plan.arm, plan.rollout_id) == (CONTROL, "qa-1")  # its evidence and comparisons still count
        assert comparison(state(0, status), plan.arm) is not None
    plan, request = planned()  # type: ignore[misc]
    split(plan, request, state(0, "rolled_back"), CATALOG)  # rolled back: the candidate stays off
    assert CANDIDATE_MODEL not in ladder(plan)


def test_a_candidate_the_data_class_forbids_leaves_the_request_to_the_control() -> None:
    plan, request = planned(T.DATA_CLASS_CONFIDENTIAL)  # type: ignore[misc]
    split(plan, request, state(5), CATALOG)  # 100%: every cohort is the candidate's
    assert plan.arm == CONTROL and CANDIDATE_MODEL not in ladder(plan)
    assert any("may not serve it" in r and "CONFIDENTIAL" in r for r in plan.reasons)


def test_a_candidate_the_region_excludes_leaves_the_request_to_the_control() -> None:
    plan, request = planned(region="eu")  # type: ignore[misc]
    split(plan, request, state(5), CATALOG)
    assert plan.arm == CONTROL and CANDIDATE_MODEL not in ladder(plan)


def test_a_request_without_the_control_on_its_ladder_is_not_split() -> None:
    plan, request = planned(T.DATA_CLASS_REGULATED)  # type: ignore[misc]  # LOCAL only: no control either
    request.constraints.ClearField("allowed_tiers")
    plan = build_plan(request, classifier_pb2.Classification(data_class=T.DATA_CLASS_REGULATED, token_estimate=10),
                      CATALOG, DEPLOYED, Policy())  # fmt: skip
    split(plan, request, state(5), CATALOG)
    assert plan.arm == "" and plan.rollout_id == ""
    assert all(r.tier == T.TIER_LOCAL for r in plan.ladder)


def test_ended_rollouts_split_as_their_end_says() -> None:
    assert candidate_percent(state(2, "completed")) == 100
    assert candidate_percent(state(2, "rolled_back")) == 0
    assert candidate_percent(state(2, "aborted")) == 0
    assert candidate_percent(state(2, "paused")) == 25
    assert comparison(state(2, "rolled_back"), CANDIDATE) is None  # nothing left to judge


def test_comparisons_pair_the_candidate_with_the_control() -> None:
    stage0 = comparison(state(0), CONTROL)
    assert stage0 is not None and stage0.models == (CANDIDATE_MODEL,) and not stage0.candidate_is_live
    assert stage0.live_model == CONTROL_MODEL
    later = comparison(state(2), CANDIDATE)
    assert later is not None and later.models == (CONTROL_MODEL,) and later.candidate_is_live
    assert comparison(state(2), CONTROL) is None  # past stage 0 only the candidate arm is compared


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    drawn=messages(events_pb2.RolloutState.DESCRIPTOR, events_pb2.RolloutState),
    ours=st.booleans(),
    status=st.sampled_from(["running", "paused", "completed", "rolled_back", "aborted", "?"]),
)
def test_any_rollout_state_the_book_takes_splits_requests_without_raising(
    drawn: events_pb2.RolloutState, ours: bool, status: str
) -> None:
    # a state read off the bus reaches every request of its workload: one the router cannot
    # follow (a max_shadow_usd_per_day that is no amount raised in the request path) is refused
    if ours:
        drawn.from_model, drawn.to_model = CONTROL_MODEL, CANDIDATE_MODEL
    drawn.status = status
    book = RolloutBook()
    book.apply(drawn)
    if not book.by_workload:
        return
    plan, request = planned()  # type: ignore[misc]
    split(plan, request, drawn, CATALOG)
    for arm in (CANDIDATE, CONTROL):
        comparison(drawn, arm)


def test_the_book_keeps_the_newest_rollout_and_revision_per_workload() -> None:
    book = RolloutBook()
    first = state(1)
    book.apply(first)
    stale = state(0)
    stale.revision = 0
    book.apply(stale)
    assert book.for_workload("qa") is first
    newer = state(0)
    newer.rollout_id, newer.revision = "qa-2", 0
    newer.started_at.FromSeconds(2_000)
    book.apply(newer)
    assert book.for_workload("qa") is newer


# --- statistics ---------------------------------------------------------------------------------


def test_wilson_bounds() -> None:
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(2.7055 / 12.7055, rel=1e-3)
    lo, hi = wilson(1, 1)
    assert lo > 0.25  # one lost pair is already evidence against a 25% limit


def test_quantile_bounds_need_59_samples_for_an_upper_bound_on_p95() -> None:
    assert quantile_bounds([float(i) for i in range(58)])[1] is None
    lo, hi = quantile_bounds([float(i) for i in range(59)])
    assert hi == 58.0 and lo is not None and lo < 56


def evidence(judged: int = 0, score: float = 0.0, requests: int = 0, faults: int = 0, **more: Any) -> Any:
    return ledger_pb2.RolloutEvidence(
        arms=[
            ledger_pb2.ArmEvidence(arm="control", requests=100),
            ledger_pb2.ArmEvidence(arm="candidate", requests=requests, faults=faults, judged=judged,
                                   judged_score=score, cost_usd="0.01", **more),
        ]
    )  # fmt: skip


def test_a_stage_advances_when_every_guardrail_holds() -> None:
    decision = decide(state(1), evidence(judged=20, score=20, requests=20), datetime.now(UTC))
    assert decision.action == "advance" and {c.verdict for c in decision.checks} <= {HOLDS, "n/a"}


def test_the_last_stage_completes() -> None:
    assert decide(state(5), evidence(judged=20, score=20, requests=20), datetime.now(UTC)).action == "complete"


def test_a_quality_breach_rolls_back_with_the_numbers() -> None:
    decision = decide(state(2), evidence(judged=4, score=0, requests=4), datetime.now(UTC))
    assert decision.action == "rollback"
    assert "quality breached: 4 of 4" in decision.reason
    assert decision.alert is not None and decision.alert.model == CANDIDATE_MODEL


def test_an_error_breach_rolls_back_and_a_paused_rollout_still_rolls_back() -> None:
    decision = decide(state(2, "paused"), evidence(judged=20, score=20, requests=10, faults=8), datetime.now(UTC))
    assert decision.action == "rollback" and "error_rate breached" in decision.reason


def test_a_latency_breach_rolls_back() -> None:
    slow = evidence(judged=20, score=20, requests=60, latency_ms=[900.0] * 60)
    decision = decide(state(2, max_p95_ms=500), slow, datetime.now(UTC))
    assert decision.action == "rollback" and "p95_latency breached" in decision.reason


def test_too_little_evidence_holds() -> None:
    decision = decide(state(1), evidence(judged=3, score=3, requests=3), datetime.now(UTC))
    assert decision.action == "hold"
    assert any(c.verdict == WAITING for c in decision.checks)


def test_a_stage_waits_out_its_minimum_duration() -> None:
    s = state(1, min_duration_s=3600)
    s.stage_started_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    decision = decide(s, evidence(judged=50, score=50, requests=50), datetime.now(UTC))
    assert decision.action == "hold" and "of 3600 s" in decision.reason


def test_feedback_gates_only_by_breaching() -> None:
    bad = evidence(judged=20, score=20, requests=20, feedback_bad=9, feedback_good=1)
    bad.arms[0].feedback_good = 10
    decision = decide(state(2), bad, datetime.now(UTC))
    assert decision.action == "rollback" and "feedback breached" in decision.reason
    few = evidence(judged=20, score=20, requests=20, feedback_bad=2)
    assert decide(state(2), few, datetime.now(UTC)).action == "advance"


# --- the controller ------------------------------------------------------------------------------


@dataclass
class FakeBus:
    published: list[tuple[str, ProtoMessage]] = field(default_factory=list)

    async def publish(self, subject: str, event: ProtoMessage, event_id: str, ttl_s: float | None = None) -> None:
        self.published.append((subject, event))


@dataclass
class FakeLedger:
    evidence: ledger_pb2.RolloutEvidence = field(default_factory=ledger_pb2.RolloutEvidence)

    async def GetRolloutEvidence(self, query: ledger_pb2.EvidenceQuery, **_: Any) -> Any:
        return self.evidence


def controller() -> tuple[RolloutController, FakeBus, FakeLedger]:
    bus, ledger = FakeBus(), FakeLedger()
    return RolloutController(bus, ledger, CATALOG), bus, ledger  # type: ignore[arg-type]


def spec(**overrides: Any) -> assessor_pb2.RolloutSpec:
    fields: dict[str, Any] = {"workload": "qa", "from_model": CONTROL_MODEL, "to_model": CANDIDATE_MODEL}
    return assessor_pb2.RolloutSpec(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("overrides", "field_named"),
    [
        ({"to_model": "gpt-9"}, "to_model"),
        ({"workload": "Q A"}, "workload"),
        ({"stages": [0, 50, 25, 100]}, "stages"),
        ({"stages": [0, 50]}, "stages"),
        ({"to_model": CONTROL_MODEL}, "to_model"),
        ({"guardrails": events_pb2.Guardrails(max_quality_drop=1.5)}, "max_quality_drop"),
        ({"max_shadow_usd_per_day": "lots"}, "max_shadow_usd_per_day"),
        ({"judge": events_pb2.JudgeSpec(method="vibes")}, "judge.method"),
        ({"judge": events_pb2.JudgeSpec(method="llm", model="gpt-5", rubric="x" * 5000)}, "judge.rubric"),
        ({"judge": events_pb2.JudgeSpec(method="llm", model="gpt-9")}, "judge.model"),
        # accepted before, and then no stage ever ended: every comparison was NaN, or undecided
        ({"guardrails": events_pb2.Guardrails(min_duration_s=float("nan"))}, "min_duration_s"),
        ({"guardrails": events_pb2.Guardrails(max_p95_ms=float("inf"))}, "max_p95_ms"),
        ({"judge": events_pb2.JudgeSpec(method="json_schema", json_schema='{"type": 5}')}, "judge.json_schema"),
        ({"judge": events_pb2.JudgeSpec(method="embedding", agree_at=float("nan"))}, "judge.agree_at"),
        (
            {"from_model": "", "to_model": "", "candidate_policy": "v" * 300_000, "stages": [50, 100]},
            "candidate_policy",
        ),
    ],
)
def test_a_bad_rollout_is_refused_naming_the_field(overrides: dict[str, Any], field_named: str) -> None:
    rollouts, bus, _ = controller()
    with pytest.raises(RolloutError, match=field_named):
        asyncio.run(rollouts.start(spec(**overrides), "admin:k1"))
    assert not bus.published


def test_one_moving_rollout_per_workload_and_unknown_ids_are_not_found() -> None:
    rollouts, _, _ = controller()

    async def run() -> None:
        await rollouts.start(spec(), "admin:k1")
        with pytest.raises(RolloutConflict):
            await rollouts.start(spec(), "admin:k1")
        with pytest.raises(RolloutNotFound):
            await rollouts.change(assessor_pb2.RolloutChange(rollout_id="nope", action="pause"), "admin:k1")

    asyncio.run(run())


def test_the_rollouts_are_listed_newest_first_by_workload_and_status() -> None:
    rollouts, _, _ = controller()

    async def run() -> list[str]:
        first = await rollouts.start(spec(workload="qa"), "admin:k1")
        await rollouts.change(assessor_pb2.RolloutChange(rollout_id=first.rollout_id, action="abort"), "admin:k1")
        second = await rollouts.start(spec(workload="qa"), "admin:k1")
        third = await rollouts.start(spec(workload="chat"), "admin:k1")
        return [first.rollout_id, second.rollout_id, third.rollout_id]

    first, second, third = asyncio.run(run())
    listed = lambda **q: [s.rollout_id for s in rollouts.listed(assessor_pb2.RolloutListQuery(**q)).rollouts]  # noqa: E731
    assert listed() == [third, second, first]
    assert listed(workload="qa") == [second, first]
    assert listed(status="aborted") == [first]
    assert listed(limit=1) == [third]
    for bad, field_named in (({"status": "done"}, "status"), ({"limit": 5000}, "limit")):
        with pytest.raises(RolloutError, match=field_named):
            rollouts.listed(assessor_pb2.RolloutListQuery(**bad))


def test_the_controller_rolls_back_on_a_breach_and_says_so_three_ways() -> None:
    rollouts, bus, ledger = controller()

    async def run() -> events_pb2.RolloutState:
        rails = events_pb2.Guardrails(min_samples=5, min_duration_s=0, max_quality_drop=0.4)
        started = await rollouts.start(spec(guardrails=rails), "admin")
        ledger.evidence = evidence(judged=5, score=5, requests=0)
        await rollouts.tick()  # stage 0 passes: to 5%
        assert rollouts.states[started.rollout_id].stage_index == 1
        ledger.evidence = evidence(judged=3, score=0, requests=3)
        await rollouts.tick()
        return rollouts.states[started.rollout_id]

    final = asyncio.run(run())
    assert final.status == "rolled_back" and final.revision == 2 and "quality breached" in final.reason
    subjects = [subject for subject, _ in bus.published]
    assert subjects.count(f"{bus_module.SUBJECT_ROLLOUT}.{final.rollout_id}") == 3  # started, advanced, rolled back
    assert f"{bus_module.SUBJECT_AUDIT}.rollout.rolled_back" in subjects
    assert bus_module.SUBJECT_ALERT in subjects


def test_a_state_the_controller_cannot_judge_does_not_hold_up_the_others() -> None:
    rollouts, _, ledger = controller()

    async def run() -> tuple[events_pb2.RolloutState, events_pb2.RolloutState]:
        rails = events_pb2.Guardrails(min_samples=5, min_duration_s=0, max_quality_drop=0.4)
        broken = await rollouts.start(spec(workload="qa-broken", guardrails=rails), "admin")
        healthy = await rollouts.start(spec(guardrails=rails), "admin")
        del rollouts.states[broken.rollout_id].stages[:]  # read back from another version, say
        ledger.evidence = evidence(judged=5, score=5, requests=0)
        await rollouts.tick()
        return rollouts.states[broken.rollout_id], rollouts.states[healthy.rollout_id]

    broken, healthy = asyncio.run(run())
    assert broken.stage_index == 0 and healthy.stage_index == 1  # the healthy one still advanced


def test_admins_pause_resume_promote_and_abort() -> None:
    rollouts, _, _ = controller()

    async def run() -> list[str]:
        started = await rollouts.start(spec(), "admin")
        seen = []
        for action in ("pause", "resume", "promote", "abort"):
            change = assessor_pb2.RolloutChange(rollout_id=started.rollout_id, action=action, reason="on call")
            new = await rollouts.change(change, "admin:k1")
            seen.append(f"{new.status}@{new.stages[new.stage_index]}")
        with pytest.raises(RolloutConflict):  # an ended rollout stays ended
            await rollouts.change(assessor_pb2.RolloutChange(rollout_id=started.rollout_id, action="resume"), "a")
        return seen

    assert asyncio.run(run()) == ["paused@0", "running@0", "running@5", "aborted@5"]


# --- policy rollouts -----------------------------------------------------------------------------

POLICY_YAML = (Path(__file__).parents[2] / "services/tierlift/policy/dev.yaml").read_text()


def test_a_policy_rollout_is_refused_naming_what_is_wrong() -> None:
    rollouts, bus, _ = controller()
    good = POLICY_YAML.replace("version: dev-1", "version: dev-2")
    cases = [
        (assessor_pb2.RolloutSpec(workload="qa", candidate_policy=good, stages=[0, 50, 100]), "no shadow stage"),
        (assessor_pb2.RolloutSpec(workload="qa", candidate_policy="version: [", stages=[50, 100]), "candidate_policy"),
        (assessor_pb2.RolloutSpec(workload="qa", candidate_policy=good, to_model=CANDIDATE_MODEL), "names no models"),
    ]
    for bad, why in cases:
        with pytest.raises(RolloutError, match=why):
            asyncio.run(rollouts.start(bad, "admin"))
    started = asyncio.run(rollouts.start(assessor_pb2.RolloutSpec(workload="qa", candidate_policy=good), "admin"))
    assert started.candidate_policy_version == "dev-2" and list(started.stages) == [5, 25, 50, 75, 100]
    assert len(bus.published) == 2  # the state and its audit event


def test_a_candidate_policy_keeps_the_hard_limits_in_force() -> None:
    widened = POLICY_YAML.replace("version: dev-1", "version: dev-2").replace(
        "CONFIDENTIAL: [LOCAL, CLOSED, FRONTIER]", "CONFIDENTIAL: [LOCAL, HOSTED_OPEN, CLOSED, FRONTIER]"
    )
    s = state(1)
    s.from_model, s.to_model, s.candidate_policy, s.candidate_policy_version = "", "", widened, "dev-2"
    candidate = RolloutBook().candidate_policy(s, Policy())
    assert candidate is not None and candidate.version == "dev-2"
    assert T.TIER_HOSTED_OPEN not in candidate.tiers_for_data_class[T.DATA_CLASS_CONFIDENTIAL]
    broken = RolloutBook().candidate_policy(events_pb2.RolloutState(rollout_id="x", candidate_policy="nope"), Policy())
    assert broken is None  # a candidate the router cannot read: the control serves


def test_a_policy_rollout_is_in_play_while_it_moves_and_until_its_version_is_deployed() -> None:
    s = events_pb2.RolloutState(candidate_policy="...", candidate_policy_version="dev-2", status="running")
    assert policy_in_play(s, "dev-1")
    s.status = "completed"
    assert policy_in_play(s, "dev-1") and not policy_in_play(s, "dev-2")
    s.status = "rolled_back"
    assert not policy_in_play(s, "dev-1")


def test_a_policy_canary_rolls_back_when_its_arm_agrees_less_with_the_reference() -> None:
    s = state(1)
    s.candidate_policy, s.candidate_policy_version = "...", "dev-2"
    worse = ledger_pb2.RolloutEvidence(arms=[
        ledger_pb2.ArmEvidence(arm="control", requests=40, judged=40, judged_score=38),
        ledger_pb2.ArmEvidence(arm="candidate", requests=20, judged=20, judged_score=8),
    ])  # fmt: skip
    decision = decide(s, worse, datetime.now(UTC))
    assert decision.action == "rollback" and "agreement with the reference 40.0% (candidate, 20)" in decision.reason
    same = ledger_pb2.RolloutEvidence(arms=[
        ledger_pb2.ArmEvidence(arm="control", requests=200, judged=200, judged_score=190),
        ledger_pb2.ArmEvidence(arm="candidate", requests=200, judged=200, judged_score=191),
    ])  # fmt: skip
    assert decide(s, same, datetime.now(UTC)).action == "advance"


RPCS = [("StartRollout", assessor_pb2.RolloutSpec), ("ChangeRollout", assessor_pb2.RolloutChange),
        ("GetRollout", assessor_pb2.RolloutQuery), ("RunSuite", assessor_pb2.SuiteRequest)]  # fmt: skip


@pytest.mark.parametrize(("rpc", "cls"), RPCS)
def test_any_assessor_request_gets_a_deliberate_status(rpc: str, cls: type[Any]) -> None:
    """Property, as for the Router's and the Ledger's RPCs: any message (fields drawn from the
    descriptors) gets a deliberate status, never UNKNOWN or INTERNAL; a refused rollout publishes
    nothing."""
    rollouts, bus, _ = controller()
    requests: list[Any] = []

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(messages(cls.DESCRIPTOR, cls))
    def draw(request: Any) -> None:
        requests.append(request)

    draw()  # drawn first: the calls need the server's event loop

    async def run() -> None:
        server = grpc.aio.server(interceptors=[ServerCalls(None)])
        assessor_pb2_grpc.add_AssessorServicer_to_server(AssessorServicer(None, [], rollouts), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = assessor_pb2_grpc.AssessorStub(channel)
                for request in requests:
                    published = len(bus.published)
                    try:
                        await getattr(stub, rpc)(request, timeout=10)
                        code = grpc.StatusCode.OK
                    except grpc.aio.AioRpcError as exc:
                        code = exc.code()
                    assert code not in NEVER, (rpc, request, code)
                    if code == grpc.StatusCode.INVALID_ARGUMENT:
                        assert len(bus.published) == published
        finally:
            await server.stop(None)

    asyncio.run(run())


def test_at_the_shadow_stage_a_candidate_behind_the_control_stays_where_the_plan_put_it() -> None:
    plan, request = planned()  # type: ignore[misc]
    rungs = {rung.model: rung for rung in plan.ladder}
    control_last = [m for m in ladder(plan) if m != CONTROL_MODEL]
    control_last.insert(0, CONTROL_MODEL)  # a plan with the control first and the candidate later
    del plan.ladder[:]
    plan.ladder.extend(rungs[m] for m in control_last)
    split(plan, request, state(0), CATALOG)
    assert ladder(plan) == control_last
