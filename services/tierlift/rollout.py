"""A rollout as `tierlift rollout` reads and shows it: durations (`15m`, `2h`), stage lists, and
the state, evidence and history of one rollout as text. The commands are in
`tierlift.cli.rollout`; the controller is the assessor's (assessor/_rollouts.py)."""

from __future__ import annotations

import re
from datetime import UTC

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
