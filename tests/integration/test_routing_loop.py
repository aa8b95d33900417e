"""The routing prior's learning loop on the real stack, every link in it (issue #39):

1. a workload's traffic goes through the router with shadow sampling on; the assessor judges each
   kept answer of the small LOCAL model against a FRONTIER reference, and the ledger keeps the
   verdicts with the prompt's form;
2. `tierlift calibrate --from-ledger` refits the workload's routing head from those verdicts and
   writes a new policy version;
3. `tierlift rollout start --policy` ships that version through a 50% and a 100% stage, the
   assessor's controller advancing and completing it on the evidence;
4. the router now starts the prompts the small model gets wrong on the reference, and only those,
   while the policy file the routers read never changed.

Every link is checked where it ends and the last one depends on all of them: no verdicts, no
head; a refit that changed nothing, or a version that was written but never shipped, leaves
every sum starting on LOCAL."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.devstack import Stack
from tierlift.router._policy_source import parse_policy
from tierlift.v1 import (
    assessor_pb2,
    assessor_pb2_grpc,
    common_pb2,
    ledger_pb2,
    ledger_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

WORKLOAD = "sums"
QUESTIONS = [f"What is {a} + {2 * a + 1}? Answer with the number only." for a in range(150)]
# the small model is wrong on every sum with a three-digit term (a third of them): something the
# prompt's form shows (its largest number), which the packaged prior was never fitted on
HARD = frozenset(q for q in QUESTIONS if int(q.split()[4].rstrip("?")) >= 200)
TIERLIFT = Path(sys.executable).with_name("tierlift")  # the installed console script, as an operator runs it
RULES = ["--stages", "50,100", "--min-samples", "10", "--min-duration", "0s", "--max-quality-drop", "0.4",
         "--max-error-rate", "0.25", "--max-p95-ms", "5000", "--judge", "normalised"]  # fmt: skip


class Models:
    """`small` answers the hard sums wrong; its token logprobs (drawn from overlapping ranges,
    lower when wrong) keep every answer above the packaged threshold, so every one is kept and
    judged. `reference` is always right."""

    def __init__(self) -> None:
        draw = random.Random(39)
        self.logprob = {q: draw.uniform(-0.9, -0.2) if q in HARD else draw.uniform(-0.5, -0.03) for q in QUESTIONS}

    def __call__(self, body: dict[str, Any]) -> str | tuple[str, float]:
        question = body["messages"][-1]["content"]
        a = int(question.split()[2])
        right = str(a + 2 * a + 1)
        if body["model"] == "reference":
            return right
        return (str(int(right) + 1) if question in HARD else right), self.logprob[question]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    server = WireServer(served_models=["small", "reference"], answer=Models())
    server.start()
    state = Path(tmp_path_factory.mktemp("routing-loop"))
    policy = yaml.safe_load((Path(__file__).parents[2] / "services/tierlift/policy/dev.yaml").read_text())
    # the packaged placement: no floor, so every sum starts on the small model until the loop learns one
    policy["version"], policy["open_tiers_min_prior"] = "loop-1", 0
    policy["workloads"] = {WORKLOAD: {"shadow": {"sample": 1.0, "models": ["reference"], "max_usd_per_day": "100",
                                                 "judge": {"method": "normalised"}}}}  # fmt: skip
    (state / "policy.yaml").write_text(yaml.safe_dump(policy))
    models = [wire_model("small", "LOCAL", server.endpoint, "0.01"),
              wire_model("reference", "FRONTIER", server.endpoint, "10.00")]  # fmt: skip
    running = start_provider_stack(
        state, models, TIERLIFT_POLICY=str(state / "policy.yaml"), TIERLIFT_ROLLOUT_CHECK_S="0.3"
    )
    try:
        yield running, state / "policy.yaml"
    finally:
        running.stop()
        server.stop()


def ask(question: str, cohort: str = "", idempotency_key: str = "") -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        workload=WORKLOAD, messages=[common_pb2.Message(role="user", content=question)],
        cohort_key=cohort, idempotency_key=idempotency_key,
    )  # fmt: skip


def first_rungs(stack: Stack) -> tuple[dict[str, str], set[str]]:
    """The model each question starts on (Router.Plan, one cohort per question), and the policy
    versions that planned them."""
    starts, versions = {}, set()
    with stack.channel("router", stack.keys["app"]) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        for i, question in enumerate(QUESTIONS):
            plan = router.Plan(ask(question, cohort=f"user-{i}"), timeout=10)
            starts[question] = plan.ladder[0].model
            versions.add(plan.reasons[0].split(";")[0].removeprefix("policy "))
    return starts, versions


def judged(stack: Stack) -> int:
    with stack.channel("ledger", stack.keys["admin"]) as channel:
        query = ledger_pb2.OutcomeQuery(workload=WORKLOAD)
        return len(ledger_pb2_grpc.LedgerStub(channel).ListOutcomes(query, timeout=10).answers)


def rollout(stack: Stack, rollout_id: str) -> assessor_pb2.RolloutReport:
    with stack.channel("assessor", stack.keys["admin"]) as channel:
        query = assessor_pb2.RolloutQuery(rollout_id=rollout_id)
        return assessor_pb2_grpc.AssessorStub(channel).GetRollout(query, timeout=30)


def tierlift(stack: Stack, *args: str) -> str:
    """An operator's command against this stack, as a process of its own (admin key by environment)."""
    env = os.environ | {
        "TIERLIFT_API_KEY": stack.keys["admin"], "TIERLIFT_LEDGER_ADDRESS": stack.addrs["ledger"],
        "TIERLIFT_ASSESSOR_ADDRESS": stack.addrs["assessor"], "TIERLIFT_STATE_DIR": str(stack.state_dir),
    }  # fmt: skip
    done = subprocess.run([str(TIERLIFT), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"tierlift {args[0]}: {done.stderr[-2000:]}"
    return done.stdout


def test_judged_shadow_verdicts_refit_and_rolled_out_change_where_the_workload_starts(
    stack: tuple[Stack, Path], tmp_path: Path
) -> None:
    running, policy_path = stack
    packaged = policy_path.read_text()
    before, versions = first_rungs(running)
    assert versions == {"loop-1"} and set(before.values()) == {"small"}, "every sum starts on LOCAL before the loop"

    # 1. traffic, every answer shadowed by the reference and judged (request ids from idempotency
    # keys: the answers calibrate holds back are the same in every run)
    with running.channel("router", running.keys["app"]) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        replies = [router.Complete(ask(q, idempotency_key=f"loop-{i}"), timeout=30) for i, q in enumerate(QUESTIONS)]
    assert all(r.model == "small" for r in replies), "the packaged threshold keeps every small answer"
    deadline = time.monotonic() + 60
    while (seen := judged(running)) < len(QUESTIONS):
        assert time.monotonic() < deadline, f"{seen} of {len(QUESTIONS)} answers judged after 60 s"
        time.sleep(0.3)

    # 2. the refit: a new policy version with the workload's own routing head
    candidate, report = tmp_path / "candidate.yaml", tmp_path / "calibration.json"
    printed = tierlift(running, "calibrate", "--from-ledger", "--workload", WORKLOAD, "--policy", str(policy_path),
                       "--out", str(candidate), "--max-escalation", "0.2", "--report", str(report))  # fmt: skip
    result = json.loads(report.read_text())
    refit = parse_policy(candidate.read_text(), str(candidate))
    assert refit.version == result["version"] != "loop-1" and refit.version.startswith("loop-1+sums-"), printed
    assert result["routing_head"]["fitted"] and WORKLOAD in refit.routing_heads, printed
    assert policy_path.read_text() == packaged
    assert first_rungs(running)[0] == before, "a policy version written but not shipped changes nothing"

    # 3. the rollout ships it: 50%, then 100%, then completed, each step the controller's
    started = tierlift(running, "rollout", "start", "--workload", WORKLOAD, "--policy", str(candidate), *RULES)
    rollout_id = started.split()[1].rstrip(":")
    sent = 0
    with running.channel("router", running.keys["app"]) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        while (state := rollout(running, rollout_id).state).status == "running":
            assert sent < 1200, f"{sent} requests sent and the rollout is still at {state.stages[state.stage_index]}%"
            for i in range(sent, sent + 24):
                router.Complete(ask(QUESTIONS[(i * 7) % len(QUESTIONS)], cohort=f"user-{i % 300}"), timeout=30)
            sent += 24
    story = rollout(running, rollout_id)
    assert story.state.status == "completed", story.state.reason
    assert story.state.candidate_policy_version == refit.version
    assert [(h.status, h.stages[h.stage_index]) for h in story.history] == [
        ("running", 50), ("running", 100), ("completed", 100),
    ], [h.reason for h in story.history]  # fmt: skip

    # 4. where every sum starts now: the refit version plans all of them, the hard ones learned
    # from the verdicts start on the reference, and the policy file was never touched
    after, versions = first_rungs(running)
    assert versions == {refit.version}
    moved = {q for q in QUESTIONS if after[q] != before[q]}
    assert moved and {after[q] for q in moved} == {"reference"}
    assert moved <= HARD, f"sums the small model gets right now start on the reference: {sorted(moved - HARD)}"
    assert policy_path.read_text() == packaged
    with running.channel("router", running.keys["app"]) as channel:  # and live requests' first attempts
        router = router_pb2_grpc.RouterStub(channel)
        for question in sorted(moved)[:5] + sorted(set(QUESTIONS) - HARD)[:5]:
            reply = router.Complete(ask(question, cohort="someone-new"), timeout=30)
            assert reply.attempts[0].model == after[question], question
    print(f"\n{len(moved)} of {len(HARD)} hard sums start on the reference after the loop "
          f"({sent} requests to complete the rollout)")  # fmt: skip
