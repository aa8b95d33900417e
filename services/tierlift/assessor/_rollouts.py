"""Rollouts: the assessor owns their state and is the only publisher of it
(`tierlift.rollout.state.<id>`, last value per rollout, kept by JetStream, so every router and a
restarted assessor pick it up). Admins start, pause, resume, promote and abort them; the
controller reads each running rollout's evidence from the ledger every few seconds and advances
it, completes it, or rolls it back (assessor/_rollout_stats.py decides). Every transition is an
audit event with its reason and numbers; a rollback is also a quality alert."""

from __future__ import annotations

import asyncio
import itertools
import math
import uuid
from datetime import UTC, datetime

import grpc
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import api

from tierlift.assessor import _metrics
from tierlift.assessor._metrics import alerts
from tierlift.assessor._rollout_stats import Decision, decide
from tierlift.core import bus as bus_module
from tierlift.core import money
from tierlift.core.bus import EventBus
from tierlift.core.catalog import Catalog
from tierlift.core.ids import is_slug, shown
from tierlift.core.json_schemas import schema_validator
from tierlift.core.logging import get_logger
from tierlift.v1 import assessor_pb2, events_pb2, ledger_pb2, ledger_pb2_grpc

log = get_logger(__name__)
DEFAULT_STAGES = (0, 5, 25, 50, 75, 100)
DEFAULTS = events_pb2.Guardrails(
    min_samples=100, min_duration_s=3600.0, max_quality_drop=0.05, max_error_rate=0.05, shadow_sample=0.1
)
MOVING, ENDED = ("running", "paused"), ("completed", "rolled_back", "aborted")
ACTIONS = ("pause", "resume", "promote", "abort")
JUDGES = ("exact", "normalised", "json_schema", "embedding", "llm")
# a state is one NATS message (1 MiB by default) and is sent on every transition
MAX_POLICY, MAX_RUBRIC, MAX_JSON_SCHEMA = 256 * 1024, 2_000, 16 * 1024


class RolloutError(ValueError):
    """A request the controller refuses; the message names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class RolloutNotFound(RolloutError):
    code = grpc.StatusCode.NOT_FOUND


class RolloutConflict(RolloutError):
    code = grpc.StatusCode.FAILED_PRECONDITION


def _now() -> datetime:
    return datetime.now(UTC)


def _guardrails(given: events_pb2.Guardrails) -> events_pb2.Guardrails:
    rails = events_pb2.Guardrails()
    rails.CopyFrom(DEFAULTS)
    for name in ("min_duration_s", "max_error_rate"):  # unset: the default; 0 is a choice
        if given.HasField(name):
            setattr(rails, name, getattr(given, name))
    for name in ("min_samples", "max_quality_drop", "max_p95_ms", "shadow_sample"):  # 0: the default
        if getattr(given, name):
            setattr(rails, name, getattr(given, name))
    rails.max_cost_per_quality_usd = given.max_cost_per_quality_usd
    if not 0 < rails.max_quality_drop < 1:
        raise RolloutError(f"max_quality_drop: {rails.max_quality_drop} is not between 0 and 1")
    if not 0 <= rails.max_error_rate < 1:
        raise RolloutError(f"max_error_rate: {rails.max_error_rate} is not between 0 and 1")
    if not 0 < rails.shadow_sample <= 1:
        raise RolloutError(f"shadow_sample: {rails.shadow_sample} is not in (0, 1]")
    for name in ("min_duration_s", "max_p95_ms"):  # NaN passed `< 0`, and then no stage ever ended
        if not (math.isfinite(getattr(rails, name)) and getattr(rails, name) >= 0):
            raise RolloutError(f"{name}: {getattr(rails, name)} is not a finite number of 0 or more")
    if rails.max_cost_per_quality_usd:
        try:
            if money.usd(rails.max_cost_per_quality_usd) <= 0:
                raise ValueError
        except ValueError:
            raise RolloutError(
                f"max_cost_per_quality_usd: {shown(rails.max_cost_per_quality_usd)} is not a positive amount"
            ) from None
    return rails


def _stages(given: list[int], policy: bool = False) -> list[int]:
    stages = list(given) or [p for p in DEFAULT_STAGES if p or not policy]
    if any(b <= a for a, b in itertools.pairwise(stages)) or stages[-1] != 100 or stages[0] < 0:
        raise RolloutError(f"stages: {stages} must rise strictly from 0 or more to 100")
    if policy and stages[0] == 0:
        raise RolloutError("stages: a policy rollout has no shadow stage (its arms are compared live): start above 0")
    if policy and len(stages) == 1:
        raise RolloutError("stages: a policy rollout needs a stage below 100 (its control arm is the baseline)")
    return stages


def _check_judge(judge: events_pb2.JudgeSpec) -> None:
    """Every state carries the judge to every router: keep it to what the assessor can run, and small."""
    if judge.method and judge.method not in JUDGES:
        raise RolloutError(f"judge.method: {shown(judge.method)} is not one of {', '.join(JUDGES)}")
    if len(judge.rubric) > MAX_RUBRIC or len(judge.json_schema) > MAX_JSON_SCHEMA:
        raise RolloutError(f"judge.rubric, judge.json_schema: at most {MAX_RUBRIC} and {MAX_JSON_SCHEMA} characters")
    # a judge that can never decide would hold the rollout at its first stage for good
    if judge.method == "json_schema" and isinstance(problem := schema_validator(judge.json_schema), str):
        raise RolloutError(f"judge.{problem}")
    if not 0 <= judge.agree_at <= 1:  # NaN included
        raise RolloutError(f"judge.agree_at: {judge.agree_at} is not between 0 and 1")


def _candidate_policy_version(spec: assessor_pb2.RolloutSpec) -> str:
    """A policy rollout's candidate must be a policy the routers would take."""
    from tierlift.router._policy_source import PolicyError, parse_policy  # the routers' own parser

    if spec.from_model or spec.to_model:
        raise RolloutError("from_model, to_model: a policy rollout names no models (the policy chooses them)")
    if len(spec.candidate_policy) > MAX_POLICY:
        raise RolloutError(f"candidate_policy: longer than {MAX_POLICY:,} characters (it rides in every state event)")
    try:
        return parse_policy(spec.candidate_policy, "candidate_policy").version
    except PolicyError as exc:
        raise RolloutError(str(exc)[:1000]) from None


class RolloutController:
    def __init__(
        self, bus: EventBus, ledger: ledger_pb2_grpc.LedgerStub, catalog: Catalog, timeout_s: float = 10.0
    ) -> None:
        self.bus, self.ledger, self.catalog, self.timeout_s = bus, ledger, catalog, timeout_s
        self.states: dict[str, events_pb2.RolloutState] = {}
        self._lock = asyncio.Lock()  # one transition at a time: the controller and admins share it

    async def follow(self) -> None:
        """Every rollout's latest state, now and as it changes (its own transitions included)."""
        await self.bus.watch_latest(f"{bus_module.SUBJECT_ROLLOUT}.>", self.on_message)

    async def on_message(self, msg: Msg) -> None:
        if (state := bus_module.parse_state(msg, events_pb2.RolloutState)) is not None:
            self._apply(state)

    def _apply(self, state: events_pb2.RolloutState) -> None:
        known = self.states.get(state.rollout_id)
        if known is None or state.revision > known.revision:
            self.states[state.rollout_id] = state
            _metrics.record_rollout(state)

    # --- admin actions ------------------------------------------------------------------------

    async def start(self, spec: assessor_pb2.RolloutSpec, actor: str) -> events_pb2.RolloutState:
        if not is_slug(spec.workload):
            raise RolloutError(f"workload: {shown(spec.workload)} is not a lowercase slug")
        policy_version = _candidate_policy_version(spec) if spec.candidate_policy else ""
        for name in () if policy_version else ("from_model", "to_model"):
            model = getattr(spec, name)
            if self.catalog.get(model) is None:
                raise RolloutError(f"{name}: {shown(model)} is not in the catalog")
        if spec.from_model == spec.to_model and not policy_version:
            raise RolloutError("to_model: the candidate is the control")
        _check_judge(spec.judge)
        if spec.judge.method == "llm" and self.catalog.get(spec.judge.model) is None:
            raise RolloutError(f"judge.model: {shown(spec.judge.model)} is not in the catalog")
        cap = spec.max_shadow_usd_per_day or "10"
        try:
            if money.usd(cap) < 0:
                raise ValueError
        except ValueError:
            raise RolloutError(f"max_shadow_usd_per_day: {shown(cap)} is not an amount") from None
        stages, rails = _stages(list(spec.stages), policy=bool(policy_version)), _guardrails(spec.guardrails)
        judge = spec.judge if spec.judge.method else events_pb2.JudgeSpec(method="normalised")
        async with self._lock:
            for known in self.states.values():
                if known.workload == spec.workload and known.status in MOVING:
                    raise RolloutConflict(
                        f"workload: {spec.workload} already has rollout {known.rollout_id} ({known.status})"
                    )
            state = events_pb2.RolloutState(
                rollout_id=f"{spec.workload}-{uuid.uuid4().hex[:8]}", workload=spec.workload,
                from_model=spec.from_model, to_model=spec.to_model, stages=stages, stage_index=0, status="running",
                guardrails=rails, actor=actor, judge=judge,
                max_shadow_usd_per_day=money.to_wire(money.usd(cap)),
                reason=f"started: {spec.from_model} -> {spec.to_model} through {stages}%",
                candidate_policy=spec.candidate_policy, candidate_policy_version=policy_version,
            )  # fmt: skip
            if policy_version:
                state.reason = f"started: policy {policy_version} for workload {spec.workload} through {stages}%"
            state.started_at.GetCurrentTime()
            state.stage_started_at.CopyFrom(state.started_at)
            await self._publish(state, "started")
        return state

    async def change(self, change: assessor_pb2.RolloutChange, actor: str) -> events_pb2.RolloutState:
        if change.action not in ACTIONS:
            raise RolloutError(f"action: {shown(change.action)} is not one of {', '.join(ACTIONS)}")
        async with self._lock:
            state = self._known(change.rollout_id)
            if state.status in ENDED:
                raise RolloutConflict(f"rollout_id: {state.rollout_id} has ended ({state.status})")
            why = f" ({change.reason[:200]})" if change.reason else ""
            new = _next(state, actor)
            if change.action == "pause":
                new.status, new.reason = "paused", f"paused by {actor}{why}"
            elif change.action == "resume":
                new.status, new.reason = "running", f"resumed by {actor}{why}"
            elif change.action == "abort":
                new.status, new.reason = "aborted", f"aborted by {actor}{why}: the control serves everyone"
            elif state.stage_index == len(state.stages) - 1:
                new.status, new.reason = "completed", f"promoted to completion by {actor}{why}"
            else:
                new.stage_index += 1
                new.stage_started_at.GetCurrentTime()
                new.reason = f"promoted by {actor}{why} to {new.stages[new.stage_index]}%"
            await self._publish(new, change.action)
            return new

    def _known(self, rollout_id: str) -> events_pb2.RolloutState:
        state = self.states.get(rollout_id)
        if state is None:
            raise RolloutNotFound(f"rollout_id: no rollout {shown(rollout_id)}")
        return state

    def listed(self, query: assessor_pb2.RolloutListQuery) -> assessor_pb2.RolloutList:
        """The rollouts this controller knows, newest first, filtered by workload and status."""
        if query.status and query.status not in (*MOVING, *ENDED):
            raise RolloutError(f"status: {shown(query.status)} is not one of {', '.join((*MOVING, *ENDED))}")
        if query.limit > 1000:
            raise RolloutError(f"limit: at most 1000, not {query.limit}")
        chosen = [
            s for s in self.states.values()
            if (not query.workload or s.workload == query.workload) and (not query.status or s.status == query.status)
        ]  # fmt: skip
        chosen.sort(key=lambda s: s.started_at.ToNanoseconds(), reverse=True)
        return assessor_pb2.RolloutList(rollouts=chosen[: query.limit or 100])

    async def report(self, query: assessor_pb2.RolloutQuery) -> assessor_pb2.RolloutReport:
        if query.rollout_id:
            state = self._known(query.rollout_id)
        else:
            mine = [s for s in self.states.values() if s.workload == query.workload]
            if not mine:
                raise RolloutNotFound(f"workload: no rollout for {shown(query.workload)}")
            state = max(mine, key=lambda s: s.started_at.ToNanoseconds())
        evidence = await self._evidence(state)
        report = assessor_pb2.RolloutReport(
            state=state, evidence=evidence, history=await self._history(state.rollout_id)
        )
        if state.stage_index < len(state.stages):
            report.checks.extend(decide(state, evidence, _now()).checks)
        return report

    # --- the controller -----------------------------------------------------------------------

    async def run_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.tick()
            except Exception:
                log.exception("rollout_tick_failed")

    async def tick(self) -> None:
        for rollout_id in [i for i, s in self.states.items() if s.status in MOVING]:
            state = self.states[rollout_id]
            try:
                evidence = await self._evidence(state)
            except grpc.aio.AioRpcError as exc:
                log.warning("rollout_evidence_unavailable", rollout_id=rollout_id, error=exc.code().name)
                continue
            async with self._lock:
                if self.states[rollout_id].revision != state.revision:
                    continue  # an admin moved it meanwhile: judge the new stage next time
                try:
                    decision = decide(state, evidence, _now())
                except Exception:  # one state the controller cannot judge must not hold up the others
                    log.exception("rollout_not_judged", rollout_id=rollout_id)
                    continue
                await self._act(state, decision)

    async def _act(self, state: events_pb2.RolloutState, decision: Decision) -> None:
        if decision.action == "hold":
            return
        new = _next(state, "controller")
        new.reason = decision.reason
        if decision.action == "rollback":
            new.status = "rolled_back"
        elif decision.action == "complete":
            new.status = "completed"
            if new.candidate_policy:
                new.reason += f"; deploy policy {new.candidate_policy_version} as the routers' policy file"
        else:
            new.stage_index += 1
            new.stage_started_at.GetCurrentTime()
            new.reason = f"advanced to {new.stages[new.stage_index]}%: {decision.reason}"
        await self._publish(new, new.status if decision.action != "advance" else "advanced")
        if decision.alert is not None:
            alert = decision.alert
            alert.event_id = f"quality.alert.{new.event_id}"
            alert.occurred_at.GetCurrentTime()
            await self.bus.publish(bus_module.SUBJECT_ALERT, alert, alert.event_id)
            alerts.add(1, {"workload": alert.workload, "model": alert.model})
        log.info("rollout_transition", rollout_id=new.rollout_id, status=new.status,
                 percent=new.stages[new.stage_index], reason=new.reason)  # fmt: skip

    async def _evidence(self, state: events_pb2.RolloutState) -> ledger_pb2.RolloutEvidence:
        """This stage's evidence per arm. A policy rollout's quality compares its arms, and at 100%
        no request is in the control arm: there the control's evidence is the whole rollout's (its
        earlier stages), else a policy rollout could never complete."""
        since = state.stage_started_at.ToDatetime(tzinfo=UTC).isoformat()
        query = ledger_pb2.EvidenceQuery(
            rollout_id=state.rollout_id, since=since, control_model=state.from_model, candidate_model=state.to_model
        )
        evidence = await self.ledger.GetRolloutEvidence(query, timeout=self.timeout_s)
        last = state.stage_index >= len(state.stages) - 1
        if not (state.candidate_policy and last and state.stages and state.stages[-1] == 100):
            return evidence
        query.since = state.started_at.ToDatetime(tzinfo=UTC).isoformat()
        whole = await self.ledger.GetRolloutEvidence(query, timeout=self.timeout_s)
        baseline = next((arm for arm in whole.arms if arm.arm == "control"), None)
        if baseline is None:
            return evidence
        combined = ledger_pb2.RolloutEvidence()
        combined.arms.add().CopyFrom(baseline)
        for arm in evidence.arms:
            if arm.arm != "control":
                combined.arms.add().CopyFrom(arm)
        return combined

    async def _publish(self, state: events_pb2.RolloutState, action: str) -> None:
        state.event_id = f"rollout.{state.rollout_id}.{state.revision}"
        state.occurred_at.GetCurrentTime()
        await self.bus.publish(f"{bus_module.SUBJECT_ROLLOUT}.{state.rollout_id}", state, state.event_id)
        self._apply(state)  # before the echo arrives, so the next tick sees it
        audit = events_pb2.AuditEvent(
            event_id=f"audit.{state.event_id}", actor=state.actor[:64], action=f"rollout.{action}"[:32],
            target=state.rollout_id, detail=state.reason[:1024],
        )  # fmt: skip
        audit.occurred_at.CopyFrom(state.occurred_at)
        await self.bus.publish(f"{bus_module.SUBJECT_AUDIT}.rollout.{action}", audit, audit.event_id)

    async def _history(self, rollout_id: str) -> list[events_pb2.RolloutState]:
        """Every state the rollout went through, from the stream (oldest first)."""
        states: list[events_pb2.RolloutState] = []
        done = asyncio.Event()

        async def collect(msg: Msg) -> None:
            state = events_pb2.RolloutState()
            try:
                state.ParseFromString(msg.data)
                states.append(state)
            except DecodeError:
                pass
            if msg.metadata.num_pending == 0:
                done.set()

        subject = f"{bus_module.SUBJECT_ROLLOUT}.{rollout_id}"
        watch = await self.bus.watch_latest(subject, collect, deliver=api.DeliverPolicy.ALL)
        try:
            await asyncio.wait_for(done.wait(), self.timeout_s)
        except TimeoutError:
            log.warning("rollout_history_incomplete", rollout_id=rollout_id, states=len(states))
        finally:
            await self.bus.stop_watch(watch)
        return states


def _next(state: events_pb2.RolloutState, actor: str) -> events_pb2.RolloutState:
    new = events_pb2.RolloutState()
    new.CopyFrom(state)
    new.revision += 1
    new.actor = actor
    return new
