"""Rollouts on the real stack (two routers, the ledger, the assessor's controller, wire-server
models through the official openai SDK), with stage durations shortened by configuration:

- a good candidate goes shadow -> 5% -> 25% -> 50% -> 75% -> 100% and completes, and every cohort
  then reaches it first with the control as its fallback;
- a candidate that turns bad at the 25% stage is rolled back by the controller within seconds of
  the ledger holding conclusive evidence (no more bad answers than that evidence took); both
  routers send its cohorts back to the control within seconds; the ledger (evidence, audit,
  alert) and `tierlift rollout status` tell the story;
- admins pause, resume and abort; bad rollouts are refused naming the field."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.assessor._rollout_stats import wilson
from tierlift.cli import main
from tierlift.devstack import Stack
from tierlift.v1 import (
    assessor_pb2,
    assessor_pb2_grpc,
    common_pb2,
    ledger_pb2,
    ledger_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

QUESTIONS = [f"What is {a} + {a + 7}? Answer with the number only." for a in range(60)]
ROUTERS = ("router", "router-2")
RULE_MAX_QUALITY_DROP = 0.25
# the controller ticks every 0.3 s here; the rest is one evidence query and a published state
ROLLBACK_WITHIN_S = 10
RULES = ["--min-samples", "10", "--min-duration", "0s", "--max-quality-drop", str(RULE_MAX_QUALITY_DROP),
         "--max-error-rate", "0.25", "--max-p95-ms", "5000", "--shadow-sample", "1",
         "--judge", "normalised"]  # fmt: skip


class Models:
    """Every model sums right, except `flaky` once `flaky_bad` is set; `flaky` is less sure of
    itself (token logprob -0.9: confidence ~0.41) than the others (-0.05: ~0.95)."""

    def __init__(self) -> None:
        self.flaky_bad = False
        self.calls: Counter[str] = Counter()

    def __call__(self, body: dict[str, Any]) -> tuple[str, float]:
        self.calls[body["model"]] += 1
        question = body["messages"][-1]["content"]
        a = int(question.split()[2])
        right = str(a + a + 7)
        if body["model"] == "flaky":
            return (str(int(right) + 1) if self.flaky_bad else right), -0.9
        return right, -0.05


@pytest.fixture(scope="module")
def models() -> Models:
    return Models()


@pytest.fixture(scope="module")
def stack(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    server = WireServer(served_models=["incumbent", "newcomer", "flaky", "reference"], answer=models)
    server.start()
    state = Path(tmp_path_factory.mktemp("rollouts"))
    catalog = [wire_model("incumbent", "CLOSED", server.endpoint, "2.00"),
               wire_model("newcomer", "HOSTED_OPEN", server.endpoint, "0.50"),
               wire_model("flaky", "HOSTED_OPEN", server.endpoint, "0.40"),
               wire_model("reference", "FRONTIER", server.endpoint, "10.00")]  # fmt: skip
    (state / "policy.yaml").write_text(yaml.safe_dump(canary_policy("dev-1", threshold=0.5)))
    running = start_provider_stack(state, catalog, TIERLIFT_ROLLOUT_CHECK_S="0.3",
                                   TIERLIFT_POLICY=str(state / "policy.yaml"))  # fmt: skip
    try:
        running.start_service("router-2")  # a second replica: every router must obey
        yield running
    finally:
        running.stop()
        server.stop()


def canary_policy(version: str, threshold: float) -> dict[str, Any]:
    """The dev policy, with workload `canary` shadowed by `reference` and escalating below `threshold`."""
    policy = yaml.safe_load((Path(__file__).parents[2] / "services/tierlift/policy/dev.yaml").read_text())
    policy["version"], policy["open_tiers_min_prior"] = version, 0
    shadow = {"sample": 1.0, "models": ["reference"], "max_usd_per_day": "100", "judge": {"method": "normalised"}}
    policy["workloads"] = {"canary": {"confidence_threshold": threshold, "shadow": shadow}}
    return policy  # type: ignore[no-any-return]


def request(workload: str, models: list[str], cohort: str, question: str) -> router_pb2.CompleteRequest:
    # the app pins the two models in play, as a workload moving between two paths would
    return router_pb2.CompleteRequest(
        tenant="dev", workload=workload, messages=[common_pb2.Message(role="user", content=question)],
        constraints=router_pb2.Constraints(models=models), cohort_key=cohort,
    )  # fmt: skip


def plan(stack: Stack, router: str, workload: str, models: list[str], cohort: str) -> router_pb2.RoutingPlan:
    with stack.channel(router, stack.keys["app"]) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        return stub.Plan(request(workload, models, cohort, QUESTIONS[0]), timeout=10)  # type: ignore[no-any-return]


def report(stack: Stack, rollout_id: str) -> assessor_pb2.RolloutReport:
    with stack.channel("assessor", stack.keys["admin"]) as channel:
        query = assessor_pb2.RolloutQuery(rollout_id=rollout_id)
        return assessor_pb2_grpc.AssessorStub(channel).GetRollout(query, timeout=30)  # type: ignore[no-any-return]


def caught_up(stack: Stack, rollout_id: str, calls: int, since: str) -> ledger_pb2.ArmEvidence:
    """The candidate arm's evidence since `since`, once the ledger has judged all `calls` the
    candidate model has answered in this rollout (each is judged once)."""
    query = ledger_pb2.EvidenceQuery(rollout_id=rollout_id, control_model="incumbent", candidate_model="flaky")
    deadline = time.time() + 30
    with stack.channel("ledger", stack.keys["admin"]) as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        while (judged := ledger.GetRolloutEvidence(query, timeout=10).arms[1].judged) < calls:
            assert time.time() < deadline, f"{judged} of {calls} candidate answers judged after 30 s"
            time.sleep(0.05)
        query.since = since
        return ledger.GetRolloutEvidence(query, timeout=10).arms[1]  # type: ignore[no-any-return]


def cli(*args: str) -> int:
    return main(list(args))


def start(stack: Stack, capsys: pytest.CaptureFixture[str], workload: str, control: str, candidate: str) -> str:
    capsys.readouterr()
    args = ["rollout", "start", "--workload", workload, "--from", control, "--to", candidate, *RULES]
    assert cli(*args, "--assessor", stack.addrs["assessor"], "--key", stack.keys["admin"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("started ")
    return out.split()[1].rstrip(":")


class Traffic:
    """Requests from rotating users over both routers, four at a time."""

    def __init__(self, stack: Stack, workload: str, models: list[str]) -> None:
        self.stack, self.workload, self.models = stack, workload, models
        self.sent = 0
        self.lock = threading.Lock()
        self.channels = {r: stack.channel(r, stack.keys["app"]) for r in ROUTERS}
        self.pool = ThreadPoolExecutor(4)

    def one(self, i: int) -> router_pb2.CompleteResponse:
        stub = router_pb2_grpc.RouterStub(self.channels[ROUTERS[i % 2]])
        reply = stub.Complete(request(self.workload, self.models, f"user-{i % 400}", QUESTIONS[i % 60]), timeout=30)
        with self.lock:
            self.sent += 1
        return reply  # type: ignore[no-any-return]

    def until(self, done: Callable[[], bool], limit: int, batch: int = 24) -> None:
        while not done():
            assert self.sent < limit, f"{self.sent} requests sent and not there yet"
            self.send(batch)

    def send(self, n: int) -> None:
        list(self.pool.map(self.one, range(self.sent, self.sent + n)))

    def close(self) -> None:
        self.pool.shutdown()
        for channel in self.channels.values():
            channel.close()


def test_a_good_candidate_promotes_through_every_stage(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    rollout_id = start(stack, capsys, "moving", "incumbent", "newcomer")
    traffic = Traffic(stack, "moving", ["incumbent", "newcomer"])
    try:
        traffic.until(lambda: report(stack, rollout_id).state.status != "running", limit=3000)
    finally:
        traffic.close()
    story = report(stack, rollout_id)
    assert story.state.status == "completed", story.state.reason
    assert [(h.status, h.stages[h.stage_index]) for h in story.history] == [
        ("running", 0), ("running", 5), ("running", 25), ("running", 50), ("running", 75), ("running", 100),
        ("completed", 100),
    ]  # fmt: skip
    assert all("quality" in h.reason and "passed" in h.reason for h in story.history[1:])
    for router in ROUTERS:  # every cohort reaches the candidate first, the control stays as its fallback
        for cohort in ("user-1", "someone-new"):
            p = plan(stack, router, "moving", ["incumbent", "newcomer"], cohort)
            assert [r.model for r in p.ladder] == ["newcomer", "incumbent"] and p.arm == "candidate"
    with capsys.disabled():
        print(f"\npromoted to 100% after {traffic.sent} requests")


def test_a_candidate_that_turns_bad_at_25_percent_is_rolled_back(
    stack: Stack, models: Models, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout_id = start(stack, capsys, "turning", "incumbent", "flaky")
    pinned = ["incumbent", "flaky"]
    traffic = Traffic(stack, "turning", pinned)
    flaky_calls = models.calls["flaky"]  # each call here is judged once (shadow sample 1)
    try:
        traffic.until(lambda: report(stack, rollout_id).state.stage_index >= 2, limit=3000)
        stage = report(stack, rollout_id).state
        assert stage.stages[stage.stage_index] == 25
        since = stage.stage_started_at.ToJsonString()
        judged_before = caught_up(stack, rollout_id, models.calls["flaky"] - flaky_calls, since)
        models.flaky_bad = True
        went_bad, bad_answers = traffic.sent, models.calls["flaky"]
        # In step with the pipeline (judge, ledger), so that what is counted is the evidence the
        # controller needed, not how far the traffic ran ahead of it on a busy machine.
        while report(stack, rollout_id).state.status != "rolled_back":
            evidence = caught_up(stack, rollout_id, models.calls["flaky"] - flaky_calls, since)
            if wilson(evidence.judged - evidence.judged_score, evidence.judged)[0] > RULE_MAX_QUALITY_DROP:
                break  # conclusive: the controller must act on it without more traffic
            assert traffic.sent - went_bad < 400, f"{traffic.sent - went_bad} requests sent and not conclusive"
            traffic.send(4)
        conclusive_at = time.time()
        while (state := report(stack, rollout_id).state).status != "rolled_back":
            assert time.time() - conclusive_at < ROLLBACK_WITHIN_S, f"not rolled back: {state.reason}"
            time.sleep(0.1)
        after, bad_answers = traffic.sent - went_bad, models.calls["flaky"] - bad_answers
    finally:
        models.flaky_bad = False
        traffic.close()
    story = report(stack, rollout_id)
    assert story.state.stages[story.state.stage_index] == 25 and story.state.actor == "controller"
    assert "quality breached" in story.state.reason
    with capsys.disabled():
        print(
            f"\nrolled back {after} requests ({bad_answers} bad answers; {judged_before.judged} good judged pairs "
            f"at 25% before) after the candidate turned bad: {story.state.reason}"
        )

    # every router sends the candidate's cohorts back to the control within seconds
    rolled_back_at = story.state.occurred_at.ToNanoseconds() / 1e9  # a naive ToDatetime() would read as local time
    cohorts = [f"user-{i}" for i in range(400)]
    for router in ROUTERS:
        deadline = time.time() + 10
        while any("flaky" in [r.model for r in plan(stack, router, "turning", pinned, c).ladder] for c in cohorts[:60]):
            assert time.time() < deadline, f"{router} still sends cohorts to the candidate"
            time.sleep(0.1)
        assert time.time() - rolled_back_at < 5
        assert plan(stack, router, "turning", pinned, "user-7").arm == "control"

    # the ledger tells the story: the alert, the audit trail, the arms' evidence
    with stack.channel("ledger", stack.keys["admin"]) as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        alerts = ledger.GetQuality(ledger_pb2.QualityQuery(workload="turning"), timeout=10).alerts
        assert any(rollout_id in a.reason and a.model == "flaky" for a in alerts)
        entries = ledger.ListAudit(ledger_pb2.AuditQuery(), timeout=10).entries
        actions = [e.action for e in entries if e.target == rollout_id]
        assert {"rollout.started", "rollout.advanced", "rollout.rolled_back"} <= set(actions)
    capsys.readouterr()
    admin = ["--assessor", stack.addrs["assessor"], "--key", stack.keys["admin"]]
    assert cli("rollout", "status", rollout_id, *admin) == 0
    shown = capsys.readouterr().out
    print(shown)
    assert "status rolled_back" in shown and "quality" in shown and "history:" in shown
    assert shown.count("\n  20") == len(story.history)  # one line per transition
    assert cli("rollout", "list", "--status", "rolled_back", *admin) == 0  # the assessor's ListRollouts
    listed = capsys.readouterr().out
    assert rollout_id in listed and "rolled_back" in listed


def test_admins_pause_resume_and_abort_and_bad_rollouts_are_refused(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout_id = start(stack, capsys, "held", "incumbent", "newcomer")
    admin = ["--assessor", stack.addrs["assessor"], "--key", stack.keys["admin"]]
    assert cli("rollout", "start", "--workload", "held", "--from", "incumbent", "--to", "flaky", *admin) == 1
    assert "FAILED_PRECONDITION: workload: held already has rollout" in capsys.readouterr().err
    assert cli("rollout", "start", "--workload", "held2", "--from", "incumbent", "--to", "gpt-9", *admin) == 1
    assert "INVALID_ARGUMENT: to_model: 'gpt-9' is not in the catalog" in capsys.readouterr().err
    assert cli("rollout", "promote", rollout_id, "--reason", "shadow looked fine", *admin) == 0
    assert "running       5%" in capsys.readouterr().out
    assert cli("rollout", "pause", rollout_id, *admin) == 0
    assert "paused" in capsys.readouterr().out
    assert cli("rollout", "abort", rollout_id, "--reason", "vendor outage", *admin) == 0
    assert "aborted" in capsys.readouterr().out
    deadline = time.time() + 10
    while "newcomer" in [r.model for r in plan(stack, "router", "held", ["incumbent", "newcomer"], "user-1").ladder]:
        assert time.time() < deadline
        time.sleep(0.1)
    # an app key may not drive rollouts
    assert cli("rollout", "abort", rollout_id, "--assessor", stack.addrs["assessor"], "--key", stack.keys["app"]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err


def test_a_policy_canary_is_held_to_the_hard_limits_and_rolled_back_when_quality_falls(
    stack: Stack, models: Models, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # the candidate keeps flaky's unsure answers (threshold 0.2 < 0.41) and tries to widen where
    # CONFIDENTIAL data may go; the policy in force escalates them to incumbent (threshold 0.5)
    candidate = canary_policy("canary-2", threshold=0.2)
    candidate["data_classes"]["CONFIDENTIAL"] = ["LOCAL", "HOSTED_OPEN", "CLOSED", "FRONTIER"]
    (tmp_path / "candidate.yaml").write_text(yaml.safe_dump(candidate))
    admin = ["--assessor", stack.addrs["assessor"], "--key", stack.keys["admin"]]
    capsys.readouterr()
    assert cli("rollout", "start", "--workload", "canary", "--policy", str(tmp_path / "candidate.yaml"),
               "--stages", "50,100", *RULES, *admin) == 0  # fmt: skip
    rollout_id = capsys.readouterr().out.split()[1].rstrip(":")
    pinned = ["flaky", "incumbent", "reference"]

    deadline = time.time() + 10
    while not plan(stack, "router", "canary", pinned, "user-1").rollout_id:  # the routers have the rollout
        assert time.time() < deadline
        time.sleep(0.1)
    arms = {c: plan(stack, "router", "canary", pinned, c) for c in (f"user-{i}" for i in range(20))}
    on_candidate = [c for c, p in arms.items() if p.arm == "candidate"]
    assert on_candidate and len(on_candidate) < 20
    assert "policy canary-2" in arms[on_candidate[0]].reasons[0]  # the candidate arm is planned by the candidate
    with stack.channel("router", stack.keys["app"]) as channel:
        confidential = request("canary", pinned, on_candidate[0], QUESTIONS[0])
        confidential.constraints.data_class = common_pb2.DATA_CLASS_CONFIDENTIAL
        ladder = [r.model for r in router_pb2_grpc.RouterStub(channel).Plan(confidential, timeout=10).ladder]
    assert "flaky" not in ladder  # the canary may change preferences, never where data may go

    models.flaky_bad = True
    traffic = Traffic(stack, "canary", pinned)
    try:
        traffic.until(lambda: report(stack, rollout_id).state.status != "running", limit=600, batch=8)
    finally:
        models.flaky_bad = False
        traffic.close()
    story = report(stack, rollout_id)
    assert story.state.status == "rolled_back" and "quality breached" in story.state.reason, story.state.reason
    assert story.state.candidate_policy_version == "canary-2"
    for router in ROUTERS:  # the policy file serves everyone again
        deadline = time.time() + 10
        while plan(stack, router, "canary", pinned, on_candidate[0]).rollout_id:
            assert time.time() < deadline
            time.sleep(0.1)
    with capsys.disabled():
        print(f"\npolicy canary rolled back after {traffic.sent} requests: {story.state.reason}")


def test_a_rollout_survives_restarts_of_the_assessor_and_a_router(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout_id = start(stack, capsys, "lasting", "incumbent", "newcomer")
    admin = ["--assessor", stack.addrs["assessor"], "--key", stack.keys["admin"]]
    assert cli("rollout", "promote", rollout_id, *admin) == 0  # to 5%
    for name in ("assessor", "router-2"):  # on the same ports: clients and the stack keep their addresses
        port = int(stack.addrs[name].rsplit(":", 1)[1])
        assert stack.stop_service(name) == 0
        stack.start_service(name, port=port)
    state = report(stack, rollout_id).state  # the restarted assessor read it back from JetStream
    assert (state.status, state.stages[state.stage_index], state.revision) == ("running", 5, 1)
    deadline = time.time() + 10
    while not plan(stack, "router-2", "lasting", ["incumbent", "newcomer"], "user-1").rollout_id:
        assert time.time() < deadline, "the restarted router does not split the workload"
        time.sleep(0.1)
    traffic = Traffic(stack, "lasting", ["incumbent", "newcomer"])
    try:  # and the restarted controller goes on judging it
        traffic.until(lambda: report(stack, rollout_id).state.stage_index >= 2, limit=1500)
    finally:
        traffic.close()
    assert cli("rollout", "abort", rollout_id, *admin) == 0
