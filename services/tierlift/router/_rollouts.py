"""Rollouts as a router applies them: the latest state of each rollout (published only by the
assessor, which decides every transition), the sticky cohort a request falls in, and each arm's
ladder, or for a policy rollout each arm's policy. Pure apart from `RolloutBook.on_message`, so
every split is testable.

While a workload's rollout gives the candidate a share of cohorts, its candidate serves only the
candidate arm: the control arm's ladder leaves it out, and the candidate arm's ladder puts it
where the control stood, with the control right after it as the fallback. The split never
widens what a request may reach: a candidate that the plan excluded (data class, region,
licence, budget, pins, preferences) is not put back, and the control serves the request. A
shadow-only stage (0%) serves every cohort as the plan would without the rollout, with one
exception the comparison needs: the control answers first, so a candidate the plan put ahead of
it waits right behind it (still the control's fallback), and a candidate behind it stays put."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from nats.aio.msg import Msg

from tierlift.core import money
from tierlift.core.bus import parse_state
from tierlift.core.catalog import Catalog
from tierlift.core.ids import shown
from tierlift.core.logging import get_logger
from tierlift.router._policy import Policy, ShadowPolicy
from tierlift.router._policy_source import PolicyError, parse_policy
from tierlift.v1 import events_pb2, router_pb2

log = get_logger(__name__)
CONTROL, CANDIDATE = "control", "candidate"
MOVING = ("running", "paused")  # the controller still judges these; both arms are compared


def _unusable(state: events_pb2.RolloutState) -> str:
    """Why the router cannot follow this state ("" when it can). The assessor checks what it
    publishes; a state that slipped past (another version, a bug) must not fail requests."""
    try:
        money.usd(state.max_shadow_usd_per_day or "10")
    except ValueError:
        return f"max_shadow_usd_per_day: {shown(state.max_shadow_usd_per_day)} is not a decimal amount"
    return ""


def candidate_percent(state: events_pb2.RolloutState) -> float:
    """Share of cohorts (0..100) the candidate serves in this state."""
    if state.status == "completed":
        return 100.0
    if state.status in MOVING and state.stage_index < len(state.stages):
        return float(state.stages[state.stage_index])
    return 0.0  # rolled back or aborted: the control serves everyone


def cohort_point(tenant: str, workload: str, key: str) -> float:
    """Where a cohort key falls in [0, 100): stable across routers, restarts and stages, so a key
    on the candidate at 5% stays on it at 25%."""
    digest = hashlib.sha256(f"{tenant}\x00{workload}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


@dataclass
class RolloutBook:
    """The newest rollout per workload, as the assessor last published it, and the candidate
    policy of each policy rollout, parsed once and narrowed once per policy in force (not per
    request: both are read on every request of the workload)."""

    by_workload: dict[str, events_pb2.RolloutState] = field(default_factory=dict)
    _parsed: dict[str, Policy | None] = field(default_factory=dict)  # rollout id -> its candidate policy
    # rollout id -> (the policy in force, the candidate under that policy's hard limits)
    _narrowed: dict[str, tuple[Policy, Policy | None]] = field(default_factory=dict)

    def candidate_policy(self, state: events_pb2.RolloutState, current: Policy) -> Policy | None:
        """A policy rollout's candidate, under the hard limits of the policy in force (a canary
        may change preferences, never widen where data may go); None if it does not parse."""
        cached = self._narrowed.get(state.rollout_id)
        if cached is not None and cached[0] is current:
            return cached[1]
        candidate = self._parse(state)
        narrowed = None if candidate is None else _under_limits(candidate, current)
        self._narrowed[state.rollout_id] = (current, narrowed)
        return narrowed

    def _parse(self, state: events_pb2.RolloutState) -> Policy | None:
        if state.rollout_id not in self._parsed:
            try:
                self._parsed[state.rollout_id] = parse_policy(state.candidate_policy, f"rollout {state.rollout_id}")
            except PolicyError as exc:
                log.error("rollout_policy_refused", rollout_id=state.rollout_id, error=str(exc))
                self._parsed[state.rollout_id] = None
        return self._parsed[state.rollout_id]

    def policy_for(self, plan: router_pb2.RoutingPlan, current: Policy) -> Policy:
        """The policy a planned request is priced and scored under: its arm's (the one it was
        planned with, even if the policy file changed since)."""
        cached = self._narrowed.get(plan.rollout_id) if plan.arm == CANDIDATE else None
        return cached[1] if cached is not None and cached[1] is not None else current

    def apply(self, state: events_pb2.RolloutState) -> None:
        if problem := _unusable(state):  # every request of the workload would fail on it
            log.error("rollout_state_refused", rollout_id=state.rollout_id[:64], error=problem)
            return
        known = self.by_workload.get(state.workload)
        if known is not None:
            newer_rollout = state.started_at.ToNanoseconds() > known.started_at.ToNanoseconds()
            same_rollout_later = state.rollout_id == known.rollout_id and state.revision > known.revision
            if not (newer_rollout or same_rollout_later):
                return  # an older rollout's late state, or one already seen
        self.by_workload[state.workload] = state

    async def on_message(self, msg: Msg) -> None:
        if (state := parse_state(msg, events_pb2.RolloutState)) is None:
            return
        self.apply(state)
        log.info("rollout_state", rollout_id=state.rollout_id, status=state.status,
                 percent=candidate_percent(state), reason=state.reason)  # fmt: skip

    def for_workload(self, workload: str) -> events_pb2.RolloutState | None:
        return self.by_workload.get(workload)


def _under_limits(candidate: Policy, current: Policy) -> Policy:
    """The candidate with the data-class tiers of both (the narrower wins) and the fair-share
    limits, shadows, explorations and text retention of the policy in force."""
    ours = current.tiers_for_data_class
    tiers = {dc: allowed & ours[dc] for dc, allowed in candidate.tiers_for_data_class.items()}
    return replace(candidate, tiers_for_data_class=tiers, default_limits=current.default_limits,
                   tenant_limits=current.tenant_limits, key_limits=current.key_limits, shadows=current.shadows,
                   explorations=current.explorations, text_retention_s=current.text_retention_s)  # fmt: skip


def policy_in_play(state: events_pb2.RolloutState, current_version: str) -> bool:
    """Whether a policy rollout still splits its workload: while it moves, and once completed
    until the routers' own policy file is the candidate's version (deploying it ends the rollout's
    part). Rolled back or aborted: the policy file serves everyone."""
    if not state.candidate_policy:
        return False
    if state.status == "completed":
        return current_version != state.candidate_policy_version
    return state.status in MOVING


def policy_arm(request: router_pb2.CompleteRequest, state: events_pb2.RolloutState, request_id: str) -> str:
    """A policy rollout's arm for a request: every request of the workload is in one."""
    point = cohort_point(request.tenant, request.workload, request.cohort_key or request_id)
    return CANDIDATE if point < candidate_percent(state) else CONTROL


def split(
    plan: router_pb2.RoutingPlan,
    request: router_pb2.CompleteRequest,
    state: events_pb2.RolloutState,
    catalog: Catalog,
) -> None:
    """Put the request in an arm and shape the plan's ladder for it (in place)."""
    if state.status in MOVING and candidate_percent(state) == 0:
        _shadow_only(plan, request, state)
        return
    ladder = list(plan.ladder)
    control_at = next((i for i, rung in enumerate(ladder) if rung.model == state.from_model), None)
    candidate_rung = next((rung for rung in ladder if rung.model == state.to_model), None)
    if candidate_rung is not None:
        ladder.remove(candidate_rung)
        control_at = next((i for i, rung in enumerate(ladder) if rung.model == state.from_model), None)
    where = f"rollout {state.rollout_id} ({state.from_model} -> {state.to_model})"
    if control_at is None:
        # not traffic the rollout moves (the control may not serve it either): no arm, no evidence
        plan.reasons.append(f"{where}: its control is not on this request's ladder; not split")
        _set_ladder(plan, ladder)
        if candidate_rung is not None:
            plan.excluded.add(model=state.to_model, reason=f"{where}: the candidate serves only its own arm")
        return
    percent = candidate_percent(state)
    point = cohort_point(request.tenant, request.workload, request.cohort_key or plan.request_id)
    plan.rollout_id = state.rollout_id
    plan.arm = CANDIDATE if point < percent else CONTROL
    if plan.arm == CONTROL:
        plan.reasons.append(f"{where}: control arm (cohort {point:.2f} >= {percent:g}%)")
        if candidate_rung is not None:
            plan.excluded.add(model=state.to_model, reason=f"{where}: this request is in the control arm")
        _set_ladder(plan, ladder)
        return
    model = catalog.get(state.to_model)
    excluded = next((e.reason for e in plan.excluded if e.model == state.to_model), None)
    if candidate_rung is None or model is None:
        # the plan left the candidate out for a reason of its own: the control serves the request
        plan.arm = CONTROL
        why = excluded or "not in this router's catalog"
        plan.reasons.append(f"{where}: candidate cohort, but the candidate may not serve it ({why}); control serves")
        _set_ladder(plan, ladder)
        return
    ladder.insert(control_at, candidate_rung)
    plan.reasons.append(
        f"{where}: candidate arm (cohort {point:.2f} < {percent:g}%); {state.from_model} stays as its fallback"
    )
    _set_ladder(plan, ladder)


def _shadow_only(
    plan: router_pb2.RoutingPlan, request: router_pb2.CompleteRequest, state: events_pb2.RolloutState
) -> None:
    """A stage where the candidate serves no cohort: it is only compared (`comparison`, against
    the control's answers), and the live ladder stays the plan's but for the candidate's place:
    never ahead of the control, whose answers are what it is compared with."""
    where = f"rollout {state.rollout_id} ({state.from_model} -> {state.to_model})"
    ladder = list(plan.ladder)
    control_at = next((i for i, rung in enumerate(ladder) if rung.model == state.from_model), None)
    if control_at is None:
        plan.reasons.append(f"{where}: its control is not on this request's ladder; not split")
        return
    plan.rollout_id, plan.arm = state.rollout_id, CONTROL
    candidate_at = next((i for i, rung in enumerate(ladder) if rung.model == state.to_model), None)
    if candidate_at is not None and candidate_at < control_at:
        candidate = ladder.pop(candidate_at)
        ladder.insert(control_at, candidate)  # the control moved up one: this is right behind it
        _set_ladder(plan, ladder)
        plan.reasons.append(f"{where}: shadow only at this stage; the control answers first, the candidate behind it")
        return
    plan.reasons.append(f"{where}: shadow only at this stage; the ladder is the plan's")


def _set_ladder(plan: router_pb2.RoutingPlan, ladder: list[router_pb2.Rung]) -> None:
    rungs = []
    for rung in ladder:  # copies: the originals belong to the field cleared next
        rungs.append(router_pb2.Rung())
        rungs[-1].CopyFrom(rung)
    del plan.ladder[:]
    plan.ladder.extend(rungs)


def comparison(state: events_pb2.RolloutState, arm: str) -> ShadowPolicy | None:
    """The shadow run that compares this request's candidate answer with its control's, while the
    controller still judges the rollout: at stage 0 the candidate shadows the control's answers;
    later the control shadows the candidate arm's."""
    if state.status not in MOVING or state.candidate_policy:  # a policy's arms are judged by the workload's shadows
        return None
    if arm == CANDIDATE:
        other, live, candidate_is_live = state.from_model, state.to_model, True
    elif arm == CONTROL and candidate_percent(state) == 0:
        other, live, candidate_is_live = state.to_model, state.from_model, False
    else:
        return None
    return ShadowPolicy(
        sample=state.guardrails.shadow_sample, models=(other,),
        max_usd_per_day=money.usd(state.max_shadow_usd_per_day or "10"), judge=state.judge,
        rollout_id=state.rollout_id, candidate_is_live=candidate_is_live, live_model=live,
        spend_key=f"{state.workload}.rollout",
    )  # fmt: skip
