"""The rollout controller's decision at one stage, from the ledger's evidence per arm. Pure.

Every guardrail ends in one of three verdicts, each from a one-sided 95% bound, so noise alone
neither rolls a rollout back nor lets it advance:
- breached: the evidence is past the limit (the bound nearest the limit is beyond it);
- holds: the stage has its minimum samples and the far bound is within the limit;
- waiting: too little evidence either way.

Tests, per guardrail:
- quality: the share of judged candidate-vs-control pairs the candidate lost or disagreed on
  (1 - mean judge score), Wilson score bounds, against max_quality_drop; for a policy rollout,
  the fall in agreement with the workload's shadow reference from the control arm to the
  candidate arm, Agresti-Caffo bounds on the difference;
- p95_latency: the candidate's answering latency; distribution-free order-statistic bounds on
  the 95th percentile (binomial; the upper bound needs 59 or more samples);
- error_rate: candidate-arm requests that faulted or fell back to the control, Wilson bounds;
- feedback: bad-rating rate, candidate minus control, normal-approximation bound on the
  difference; gates only once both arms have 5 ratings, and only by breaching;
- cost_per_quality: the candidate's live cost per request divided by its quality (1 - drop),
  a point estimate after the minimum samples.

A breach rolls back at once; a stage advances when its minimum duration and samples are met and
every gating guardrail holds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tierlift.core import money
from tierlift.v1 import assessor_pb2, events_pb2, ledger_pb2

Z = 1.6448536269514722  # one-sided 95%
CONFIDENCE = 0.95
MIN_RATINGS = 5
HOLDS, BREACHED, WAITING, NOT_GATING = "holds", "breached", "waiting", "n/a"


def wilson(k: float, n: int) -> tuple[float, float]:
    """One-sided 95% Wilson score bounds (lower, upper) of a proportion k/n."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = k / n, Z * Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z * math.sqrt(max(p * (1 - p), 0.0) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _binomial_cdf(n: int, q: float) -> list[float]:
    """P(Bin(n, q) <= k) for k = 0..n."""
    log_q, log_1q = math.log(q), math.log1p(-q)
    cdf, running = [], 0.0
    for k in range(n + 1):
        log_pmf = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_q + (n - k) * log_1q
        running += math.exp(log_pmf)
        cdf.append(min(running, 1.0))
    return cdf


def quantile_bounds(values: list[float], q: float = 0.95) -> tuple[float | None, float | None]:
    """Distribution-free one-sided 95% bounds on the q-quantile: the r-th smallest value is below
    it with probability P(Bin(n, q) >= r). None where n is too small for such a bound."""
    xs, n = sorted(values), len(values)
    if n == 0:
        return None, None
    cdf = _binomial_cdf(n, q)
    lower_r = max((r for r in range(1, n + 1) if 1 - cdf[r - 1] >= CONFIDENCE), default=None)
    upper_s = min((s for s in range(1, n + 1) if cdf[s - 1] >= CONFIDENCE), default=None)
    return (xs[lower_r - 1] if lower_r else None), (xs[upper_s - 1] if upper_s else None)


def percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


@dataclass
class Decision:
    action: str  # "hold", "advance", "complete", "rollback"
    reason: str
    checks: list[assessor_pb2.GuardrailCheck] = field(default_factory=list)
    alert: events_pb2.QualityAlert | None = None  # with a rollback: the guardrail and its numbers


def _check(name: str, verdict: str, detail: str) -> assessor_pb2.GuardrailCheck:
    return assessor_pb2.GuardrailCheck(name=name, verdict=verdict, detail=detail)


def _proportion(name: str, what: str, k: float, n: int, limit: float, min_samples: int) -> assessor_pb2.GuardrailCheck:
    if n == 0:
        return _check(name, WAITING, f"no {what} yet")
    lo, hi = wilson(k, n)
    seen = f"{k:g} of {n} {what} ({k / n:.1%}); 95% Wilson bounds {lo:.1%}..{hi:.1%}, limit {limit:.1%}"
    if lo > limit:
        return _check(name, BREACHED, seen)
    if n >= min_samples and hi <= limit:
        return _check(name, HOLDS, seen)
    return _check(name, WAITING, seen + (f"; needs {min_samples}" if n < min_samples else "; not yet conclusive"))


def _latency(samples: list[float], limit: float, min_samples: int) -> assessor_pb2.GuardrailCheck:
    if not samples:
        return _check("p95_latency", WAITING, "no candidate answers yet")
    lo, hi = quantile_bounds(samples)
    point = percentile(samples, 0.95)
    shown_lo, shown_hi = ("-" if b is None else f"{b:.0f}" for b in (lo, hi))
    seen = f"p95 {point:.0f} ms over {len(samples)} answers; 95% bounds {shown_lo}..{shown_hi} ms, limit {limit:.0f} ms"
    if lo is not None and lo > limit:
        return _check("p95_latency", BREACHED, seen)
    if len(samples) >= min_samples and (hi if hi is not None else point) <= limit:
        basis = "" if hi is not None else " (under 59 answers: no upper bound exists, the estimate is used)"
        return _check("p95_latency", HOLDS, seen + basis)
    return _check("p95_latency", WAITING, seen)


def _feedback(
    control: ledger_pb2.ArmEvidence, candidate: ledger_pb2.ArmEvidence, limit: float
) -> assessor_pb2.GuardrailCheck:
    n_con, n_can = control.feedback_good + control.feedback_bad, candidate.feedback_good + candidate.feedback_bad
    if min(n_con, n_can) < MIN_RATINGS:
        return _check(
            "feedback", NOT_GATING, f"{n_can} candidate and {n_con} control ratings (gates from {MIN_RATINGS} each)"
        )
    p_can, p_con = candidate.feedback_bad / n_can, control.feedback_bad / n_con
    se = math.sqrt(p_can * (1 - p_can) / n_can + p_con * (1 - p_con) / n_con)
    lower = p_can - p_con - Z * se
    seen = (f"bad ratings {p_can:.1%} (candidate, {n_can}) vs {p_con:.1%} (control, {n_con}); "
            f"95% lower bound of the rise {lower:.1%}, limit {limit:.1%}")  # fmt: skip
    return _check("feedback", BREACHED if lower > limit else HOLDS, seen)


def _agreement_drop(
    control: ledger_pb2.ArmEvidence, candidate: ledger_pb2.ArmEvidence, limit: float, min_samples: int
) -> assessor_pb2.GuardrailCheck:
    """A policy rollout's quality: control's agreement with the reference minus the candidate's,
    with Agresti-Caffo bounds (one success and one failure added to each arm, so that two arms
    that agree every time still get an interval)."""
    n_con, n_can = control.judged, candidate.judged
    if min(n_con, n_can) == 0:
        return _check("quality", WAITING, f"{n_can} candidate and {n_con} control answers judged")
    p_con, p_can = (control.judged_score + 1) / (n_con + 2), (candidate.judged_score + 1) / (n_can + 2)
    drop = p_con - p_can
    se = math.sqrt(p_con * (1 - p_con) / (n_con + 2) + p_can * (1 - p_can) / (n_can + 2))
    lo, hi = max(-1.0, drop - Z * se), min(1.0, drop + Z * se)
    seen = (f"agreement with the reference {candidate.judged_score / n_can:.1%} (candidate, {n_can}) vs "
            f"{control.judged_score / n_con:.1%} (control, {n_con}); drop 95% bounds {lo:.1%}..{hi:.1%}, "
            f"limit {limit:.1%}")  # fmt: skip
    if lo > limit:
        return _check("quality", BREACHED, seen)
    if min(n_con, n_can) >= min_samples and hi <= limit:
        return _check("quality", HOLDS, seen)
    return _check("quality", WAITING, seen)


def decide(state: events_pb2.RolloutState, evidence: ledger_pb2.RolloutEvidence, now: datetime) -> Decision:
    rails = state.guardrails
    arms = {arm.arm: arm for arm in evidence.arms}
    control, candidate = arms.get("control", ledger_pb2.ArmEvidence()), arms.get("candidate", ledger_pb2.ArmEvidence())
    percent = state.stages[state.stage_index]
    losses = candidate.judged - candidate.judged_score
    if state.candidate_policy:  # each arm against the workload's shadow reference
        checks = [_agreement_drop(control, candidate, rails.max_quality_drop, rails.min_samples)]
    else:  # the candidate's answers against the control's
        checks = [_proportion("quality", "judged pairs lost or disagreed on", losses, candidate.judged,
                              rails.max_quality_drop, rails.min_samples)]  # fmt: skip
    if percent == 0:
        checks.append(_check("live", NOT_GATING, "stage 0 is shadow only: no live candidate traffic to measure"))
    else:
        if rails.max_p95_ms:
            checks.append(_latency(list(candidate.latency_ms), rails.max_p95_ms, rails.min_samples))
        if rails.max_error_rate:
            k = candidate.faults + candidate.fallbacks
            checks.append(_proportion("error_rate", "candidate requests faulted or fell back", k,
                                      candidate.requests, rails.max_error_rate, rails.min_samples))  # fmt: skip
        checks.append(_feedback(control, candidate, rails.max_quality_drop))
        if rails.max_cost_per_quality_usd:
            checks.append(
                _cost_per_quality(candidate, losses, money.usd(rails.max_cost_per_quality_usd), rails.min_samples)
            )
    stage = f"stage {state.stage_index + 1} of {len(state.stages)} ({percent}%)"
    breached = [c for c in checks if c.verdict == BREACHED]
    if breached:
        reason = f"{stage}: " + "; ".join(f"{c.name} breached: {c.detail}" for c in breached)
        alert = events_pb2.QualityAlert(
            workload=state.workload, model=state.to_model, reason=f"rollout {state.rollout_id} rolled back: {reason}",
            observed=losses / candidate.judged if candidate.judged else 0.0, baseline=rails.max_quality_drop,
            window=candidate.judged,
        )  # fmt: skip
        return Decision("rollback", reason, checks, alert)
    if state.status == "paused":
        return Decision("hold", f"{stage}: paused", checks)
    elapsed = (now - state.stage_started_at.ToDatetime(tzinfo=now.tzinfo)).total_seconds()
    if elapsed < rails.min_duration_s:
        return Decision("hold", f"{stage}: {elapsed:.0f} of {rails.min_duration_s:.0f} s", checks)
    if percent and candidate.requests < rails.min_samples:
        return Decision("hold", f"{stage}: {candidate.requests} of {rails.min_samples} candidate requests", checks)
    if any(c.verdict == WAITING for c in checks):
        return Decision(
            "hold", f"{stage}: waiting on " + ", ".join(c.name for c in checks if c.verdict == WAITING), checks
        )
    summary = "; ".join(f"{c.name}: {c.detail}" for c in checks if c.verdict == HOLDS)
    last = state.stage_index == len(state.stages) - 1
    return Decision("complete" if last else "advance", f"{stage} passed after {elapsed:.0f} s: {summary}", checks)


def _cost_per_quality(
    candidate: ledger_pb2.ArmEvidence, losses: float, limit: Decimal, min_samples: int
) -> assessor_pb2.GuardrailCheck:
    if candidate.requests < min_samples or not candidate.judged:
        return _check(
            "cost_per_quality", WAITING, f"{candidate.requests} candidate requests, {candidate.judged} judged"
        )
    quality = 1 - losses / candidate.judged
    if quality <= 0:
        return _check("cost_per_quality", BREACHED, "the candidate won or agreed on no judged pair")
    per_request = money.usd(candidate.cost_usd or "0") / candidate.requests
    value = per_request / Decimal(str(quality))
    seen = f"{money.to_wire(money.quantize(value))} USD per request per unit of quality, limit {limit} USD"
    return _check("cost_per_quality", BREACHED if value > limit else HOLDS, seen)
