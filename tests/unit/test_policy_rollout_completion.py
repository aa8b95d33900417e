"""A policy rollout reaches its 100% stage with no request left in its control arm: the controller
then takes the control's evidence from the whole rollout (its earlier stages) as the baseline, so
the rollout can complete (before, its quality check waited on a control arm that never came)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message as ProtoMessage

from tests.unit.router_harness import CATALOG
from tierlift.assessor._rollouts import RolloutController, RolloutError
from tierlift.v1 import assessor_pb2, events_pb2, ledger_pb2

POLICY = (Path(__file__).parents[2] / "services/tierlift/policy/dev.yaml").read_text().replace("dev-1", "dev-2")
RAILS = events_pb2.Guardrails(min_samples=10, min_duration_s=0, max_quality_drop=0.3, max_error_rate=0.25)


@dataclass
class Bus:
    published: list[tuple[str, ProtoMessage]] = field(default_factory=list)

    async def publish(self, subject: str, event: ProtoMessage, event_id: str, ttl_s: float | None = None) -> None:
        self.published.append((subject, event))


@dataclass
class Ledger:
    """This stage's evidence (`since` the stage began) and the whole rollout's (`since` it began)."""

    stage: ledger_pb2.RolloutEvidence
    whole: ledger_pb2.RolloutEvidence
    queries: list[str] = field(default_factory=list)
    started_at: str = ""

    async def GetRolloutEvidence(self, query: ledger_pb2.EvidenceQuery, **_: Any) -> ledger_pb2.RolloutEvidence:
        self.queries.append(query.since)
        return self.whole if query.since == self.started_at else self.stage


def arms(control: int, candidate: int) -> ledger_pb2.RolloutEvidence:
    return ledger_pb2.RolloutEvidence(arms=[
        ledger_pb2.ArmEvidence(arm="control", requests=control, judged=control, judged_score=control * 0.9),
        ledger_pb2.ArmEvidence(arm="candidate", requests=candidate, judged=candidate, judged_score=candidate),
    ])  # fmt: skip


def at_last_stage(ledger: Ledger) -> tuple[RolloutController, events_pb2.RolloutState]:
    controller = RolloutController(Bus(), ledger, CATALOG)  # type: ignore[arg-type]
    spec = assessor_pb2.RolloutSpec(workload="qa", candidate_policy=POLICY, stages=[50, 100], guardrails=RAILS)

    async def run() -> events_pb2.RolloutState:
        started = await controller.start(spec, "admin")
        ledger.started_at = started.started_at.ToDatetime().isoformat() + "+00:00"
        change = assessor_pb2.RolloutChange(rollout_id=started.rollout_id, action="promote")
        return await controller.change(change, "admin")

    return controller, asyncio.run(run())


def test_a_policy_rollout_at_100_percent_completes_on_the_control_arm_of_its_earlier_stages() -> None:
    ledger = Ledger(stage=arms(control=0, candidate=40), whole=arms(control=40, candidate=80))
    controller, state = at_last_stage(ledger)
    assert state.stages[state.stage_index] == 100
    asyncio.run(controller.tick())
    final = controller.states[state.rollout_id]
    assert final.status == "completed", final.reason
    assert "(control, 40)" in final.reason and "(candidate, 40)" in final.reason  # this stage's candidate arm
    assert ledger.started_at in ledger.queries


def test_a_policy_rollout_at_100_percent_still_rolls_back_when_it_agrees_less_than_the_control_did() -> None:
    worse = arms(control=0, candidate=40)
    worse.arms[1].judged_score = 12
    controller, state = at_last_stage(Ledger(stage=worse, whole=arms(control=40, candidate=80)))
    asyncio.run(controller.tick())
    final = controller.states[state.rollout_id]
    assert final.status == "rolled_back" and "quality breached" in final.reason


def test_a_policy_rollout_needs_a_stage_below_100() -> None:
    controller = RolloutController(Bus(), Ledger(arms(0, 0), arms(0, 0)), CATALOG)  # type: ignore[arg-type]
    spec = assessor_pb2.RolloutSpec(workload="qa", candidate_policy=POLICY, stages=[100])
    with pytest.raises(RolloutError, match="stages: a policy rollout needs a stage below 100"):
        asyncio.run(controller.start(spec, "admin"))
