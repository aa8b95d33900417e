"""`tierlift rollout start|list|status|pause|resume|promote|abort`: move a workload from one model to
another through the assessor's rollouts (assessor/_rollouts.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tierlift.cli._connect import ASSESSOR_HELP, KEY_HELP, Stub
from tierlift.rollout import describe, duration_s, show, stages
from tierlift.v1 import assessor_pb2, events_pb2


def cmd_start(args: argparse.Namespace, assessor: Stub) -> int:
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


def cmd_status(args: argparse.Namespace, assessor: Stub) -> int:
    query = assessor_pb2.RolloutQuery(rollout_id=args.rollout_id or "", workload=args.workload or "")
    if not (query.rollout_id or query.workload):
        raise ValueError("rollout status: name a rollout id or --workload")
    print(show(assessor(args).GetRollout(query, timeout=30)))
    return 0


def cmd_list(args: argparse.Namespace, assessor: Stub) -> int:
    query = assessor_pb2.RolloutListQuery(workload=args.workload or "", status=args.status or "", limit=args.limit)
    listed = assessor(args).ListRollouts(query, timeout=30).rollouts
    for state in listed:
        print(f"{state.rollout_id:<24} {state.workload:<16} {describe(state)}")
    if not listed:
        print("no rollouts")
    return 0


def cmd_change(args: argparse.Namespace, assessor: Stub) -> int:
    change = assessor_pb2.RolloutChange(
        rollout_id=args.rollout_id, action=args.rollout_command, reason=args.reason or ""
    )
    print(describe(assessor(args).ChangeRollout(change, timeout=30)))
    return 0


def register(sub: Any, assessor: Stub) -> None:
    rollout = sub.add_parser("rollout", help="move a workload between models: shadow, canary, full, with rollback")
    commands = rollout.add_subparsers(dest="rollout_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--assessor", help=ASSESSOR_HELP)
    common.add_argument("--key", help=KEY_HELP)
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
    listing = commands.add_parser("list", parents=[common], help="the rollouts the assessor knows, newest first")
    listing.add_argument("--workload")
    listing.add_argument("--status", choices=["running", "paused", "completed", "rolled_back", "aborted"])
    listing.add_argument("--limit", type=int, default=100, help="at most this many (up to 1000)")
    listing.set_defaults(func=lambda args: cmd_list(args, assessor))
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
