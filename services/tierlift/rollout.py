"""`tierlift rollout start|status|pause|resume|promote|abort`: move a workload from one model to
another through the assessor's rollouts (assessor/_rollouts.py)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from tierlift.v1 import assessor_pb2, events_pb2

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def duration_s(text: str, flag: str = "--min-duration") -> float:
    """'90', '90s', '15m', '2h', '7d' -> seconds."""
    found = _DURATION.match(text.strip())
    if not found:
        raise ValueError(f"{flag}: {text!r} is not a duration like 30s, 15m, 2h or 7d")
    return float(found.group(1)) * _UNIT_S[found.group(2) or "s"]


def stages(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--stages: {text!r} is not a comma-separated list of percents") from None


def describe(state: events_pb2.RolloutState) -> str:
    percent = 100 if state.status == "completed" else state.stages[state.stage_index] if state.stages else 0
    if state.status in ("rolled_back", "aborted"):
        percent = 0
    at = state.occurred_at.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")
    candidate = f"policy {state.candidate_policy_version}" if state.candidate_policy else state.to_model
    return f"{at}  {state.status:<11} {percent:>3}% on {candidate}  ({state.actor}) {state.reason}"


def show(report: assessor_pb2.RolloutReport) -> str:
    s = report.state
    stages = " -> ".join(f"[{p}%]" if i == s.stage_index and s.status in ("running", "paused") else f"{p}%"
                         for i, p in enumerate(s.stages))  # fmt: skip
    r = s.guardrails
    rails = (f"min {r.min_samples} samples and {r.min_duration_s:g} s per stage; "
             f"quality drop <= {r.max_quality_drop:.1%}"
             + (f"; p95 <= {r.max_p95_ms:g} ms" if r.max_p95_ms else "")
             + (f"; errors <= {r.max_error_rate:.1%}" if r.max_error_rate else "")
             + (f"; cost/quality <= {r.max_cost_per_quality_usd} USD" if r.max_cost_per_quality_usd else "")
             + f"; {r.shadow_sample:.0%} compared ({s.judge.method} judge)")  # fmt: skip
    lines = [
        f"rollout {s.rollout_id}: workload {s.workload}, "
        + (
            f"policy {s.candidate_policy_version} (canary)" if s.candidate_policy else f"{s.from_model} -> {s.to_model}"
        ),
        f"status {s.status}, stages {stages}",
        f"guardrails: {rails}",
        "this stage:",
    ]
    for arm in report.evidence.arms:
        p95 = sorted(arm.latency_ms)[int(0.95 * len(arm.latency_ms))] if arm.latency_ms else 0.0
        judged = f", judged {arm.judged} (score {arm.judged_score / arm.judged:.1%})" if arm.judged else ""
        lines.append(f"  {arm.arm:<9} {arm.requests:>6} requests, {arm.faults} faults, {arm.fallbacks} fallbacks, "
                     f"p95 {p95:.0f} ms, {arm.cost_usd} USD, "
                     f"feedback +{arm.feedback_good}/-{arm.feedback_bad}{judged}")  # fmt: skip
    for check in report.checks:
        lines.append(f"  {check.name:<16} {check.verdict:<8} {check.detail}")
    lines.append("history:")
    lines.extend(f"  {describe(h)}" for h in report.history)
    return "\n".join(lines)


def cmd_start(args: argparse.Namespace, assessor: Callable[[argparse.Namespace], Any]) -> int:
    rails = events_pb2.Guardrails(
        min_samples=args.min_samples or 0, max_quality_drop=args.max_quality_drop or 0, max_p95_ms=args.max_p95_ms or 0,
        max_cost_per_quality_usd=args.max_cost_per_quality or "", shadow_sample=args.shadow_sample or 0,
    )  # fmt: skip
    if args.min_duration is not None:
        rails.min_duration_s = duration_s(args.min_duration)
    if args.max_error_rate is not None:
        rails.max_error_rate = args.max_error_rate
    judge = events_pb2.JudgeSpec(method=args.judge or "", model=args.judge_model or "", rubric=args.rubric or "")
    if bool(args.policy) == bool(getattr(args, "from") or args.to):
        raise ValueError("rollout start: give --from and --to (a model rollout), or --policy (a policy rollout)")
    candidate_policy = Path(args.policy).read_text() if args.policy else ""
    spec = assessor_pb2.RolloutSpec(
        workload=args.workload, from_model=getattr(args, "from") or "", to_model=args.to or "",
        candidate_policy=candidate_policy,
        stages=stages(args.stages) if args.stages else [], guardrails=rails, judge=judge,
        max_shadow_usd_per_day=args.max_shadow_usd_per_day or "",
    )  # fmt: skip
    state = assessor(args).StartRollout(spec, timeout=30)
    print(f"started {state.rollout_id}: {describe(state)}")
    return 0


def cmd_status(args: argparse.Namespace, assessor: Callable[[argparse.Namespace], Any]) -> int:
    query = assessor_pb2.RolloutQuery(rollout_id=args.rollout_id or "", workload=args.workload or "")
    if not (query.rollout_id or query.workload):
        raise ValueError("rollout status: name a rollout id or --workload")
    print(show(assessor(args).GetRollout(query, timeout=30)))
    return 0


def cmd_change(args: argparse.Namespace, assessor: Callable[[argparse.Namespace], Any]) -> int:
    change = assessor_pb2.RolloutChange(
        rollout_id=args.rollout_id, action=args.rollout_command, reason=args.reason or ""
    )
    print(describe(assessor(args).ChangeRollout(change, timeout=30)))
    return 0


def register(sub: Any, assessor: Callable[[argparse.Namespace], Any], key_help: str) -> None:
    rollout = sub.add_parser("rollout", help="move a workload between models: shadow, canary, full, with rollback")
    commands = rollout.add_subparsers(dest="rollout_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--assessor", help="assessor address (default: TIERLIFT_ASSESSOR_ADDRESS or the running stack)")
    common.add_argument("--key", help=key_help)
    start = commands.add_parser("start", parents=[common], help="start a rollout at its first stage")
    start.add_argument("--workload", required=True)
    start.add_argument("--from", help="the control: the model the workload uses today")
    start.add_argument("--to", help="the candidate")
    start.add_argument("--policy", help="instead: a policy file to canary against the one in force (stages from 5%%)")
    start.add_argument("--stages", help="percents, e.g. 0,5,25,50,75,100 (the default); 0 = shadow only")
    start.add_argument("--min-samples", type=int, help="per stage (default 100)")
    start.add_argument("--min-duration", help="per stage: 30s, 15m, 2h, 7d (default 1h)")
    start.add_argument("--max-quality-drop", type=float, help="share of judged pairs lost (default 0.05)")
    start.add_argument("--max-p95-ms", type=float)
    start.add_argument("--max-error-rate", type=float, help="default 0.05")
    start.add_argument("--max-cost-per-quality", help="USD per request per unit of quality")
    start.add_argument("--shadow-sample", type=float, help="share of requests compared (default 0.1)")
    start.add_argument("--max-shadow-usd-per-day", help="cap on the comparison runs (default 10)")
    start.add_argument("--judge", choices=["exact", "normalised", "embedding", "llm"], help="default normalised")
    start.add_argument("--judge-model", help="for --judge llm")
    start.add_argument("--rubric", help="for --judge llm")
    start.set_defaults(func=lambda args: cmd_start(args, assessor))
    status = commands.add_parser("status", parents=[common], help="state, this stage's evidence, guardrails, history")
    status.add_argument("rollout_id", nargs="?")
    status.add_argument("--workload", help="its latest rollout")
    status.set_defaults(func=lambda args: cmd_status(args, assessor))
    actions = (("pause", "hold at this stage (a breach still rolls back)"), ("resume", "let the controller go on"),
               ("promote", "to the next stage now"), ("abort", "the control serves everyone"))  # fmt: skip
    for action, text in actions:
        change = commands.add_parser(action, parents=[common], help=text)
        change.add_argument("rollout_id")
        change.add_argument("--reason")
        change.set_defaults(func=lambda args: cmd_change(args, assessor))
