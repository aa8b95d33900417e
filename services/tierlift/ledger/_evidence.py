"""Evidence the ledger serves for decisions made elsewhere:
- a rollout's arms since its stage began (the assessor's controller, assessor/_rollouts.py): the
  requests each arm served, how many faulted or fell back, the arm model's answering latencies,
  live cost, the candidate-vs-control judgements and the feedback;
- a model path's judged answers, live and explored, with their confidence signals (`tierlift
  calibrate --from-ledger`).
The ledger only counts; it decides nothing."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, and_, func, select, union_all

from tierlift.core import money
from tierlift.ledger._schema import attempts, feedback, quality_scores, requests
from tierlift.v1 import common_pb2, ledger_pb2

ARMS = ("control", "candidate")
MAX_LATENCIES = 5_000  # the latest per arm: enough for a p95 bound, bounded in size


def rollout_evidence(
    engine: Engine, rollout_id: str, since: datetime, control_model: str, candidate_model: str
) -> ledger_pb2.RolloutEvidence:
    r, a, q, f = requests.c, attempts.c, quality_scores.c, feedback.c
    arm_model = {"control": control_model, "candidate": candidate_model}
    by_policy = not (control_model or candidate_model)  # a policy rollout: no model of its own per arm
    mine = [r.rollout_id == rollout_id, r.occurred_at >= since]
    arms = {arm: ledger_pb2.ArmEvidence(arm=arm) for arm in ARMS}
    with engine.connect() as conn:
        outcomes = select(r.arm, r.answered, r.final_model, func.count()).where(*mine)
        for arm, answered, final_model, n in conn.execute(outcomes.group_by(r.arm, r.answered, r.final_model)):
            if arm not in arms:
                continue
            evidence = arms[arm]
            evidence.requests += n
            if not answered:
                evidence.faults += n
            elif not by_policy and final_model != arm_model[arm]:
                evidence.fallbacks += n
        costs: dict[str, Decimal] = defaultdict(Decimal)
        for arm, cost in conn.execute(
            select(r.arm, a.cost_usd).join(requests, r.request_id == a.request_id).where(*mine, a.kind == "live")
        ):
            costs[arm] += cost
        for arm in ARMS:
            arms[arm].cost_usd = money.to_wire(costs[arm])
            latencies = conn.execute(
                select(a.latency_ms)
                .join(requests, r.request_id == a.request_id)
                .where(*mine, r.arm == arm, a.kind == "live",
                       a.model == (r.final_model if by_policy else arm_model[arm]),
                       a.outcome.in_(("ANSWERED",) if by_policy else ("ANSWERED", "LOW_CONFIDENCE")))
                .order_by(a.occurred_at.desc())
                .limit(MAX_LATENCIES)
            ).scalars().all()  # fmt: skip
            arms[arm].latency_ms.extend(latencies)
        if by_policy:  # each arm's answers against the workload's shadow reference
            for arm, judged, total in conn.execute(
                select(r.arm, func.count(), func.sum(q.score))
                .join(requests, and_(r.request_id == q.request_id, r.final_model == q.model))
                .where(*mine, q.source == "shadow")
                .group_by(r.arm)
            ):
                if arm in arms:
                    arms[arm].judged, arms[arm].judged_score = judged, float(total or 0.0)
        else:  # the candidate's answers against the control's
            judged, total = conn.execute(
                select(func.count(), func.coalesce(func.sum(q.score), 0.0)).where(
                    q.rollout_id == rollout_id, q.source == "rollout", q.occurred_at >= since
                )
            ).one()
            arms["candidate"].judged, arms["candidate"].judged_score = judged, float(total)
        for arm, rating, n in conn.execute(
            select(r.arm, f.rating, func.count())
            .join(requests, and_(r.request_id == f.request_id, r.tenant == f.tenant))
            .where(*mine)
            .group_by(r.arm, f.rating)
        ):
            if arm in arms and rating:
                if rating > 0:
                    arms[arm].feedback_good += n
                else:
                    arms[arm].feedback_bad += n
    return ledger_pb2.RolloutEvidence(arms=[arms[arm] for arm in ARMS])


MAX_OUTCOMES = 20_000


def judged_answers(engine: Engine, workload: str, model: str, since: datetime, limit: int) -> ledger_pb2.OutcomeList:
    """A model path's answers that a judge compared with a reference, with the signals their
    confidence came from (for `tierlift calibrate --from-ledger`), newest first:
    - its live answers that a shadow judged (score source "shadow"). Escalated answers are in only
      where a judge saw them; the router shadows the answer it kept, so most of these were kept;
    - its explored answers (source "explore"): requests the learned router started above this
      model, which an exploration run also sent to it (router/_shadow.py). The verdict is this
      model's answer against the live one; the signals, prior and confidence are those of the
      run's own attempt, billed as kind "shadow" under event id `<request>.explore.<model>`, so
      a verdict whose run the ledger has not (yet) recorded is left out. These are the answers
      the router would not have kept, the region the live ones never show."""
    a, q = attempts.c, quality_scores.c
    answering = [a.workload == workload, a.kind == "live", a.occurred_at >= since,
                 a.outcome.in_(("ANSWERED", "LOW_CONFIDENCE"))]  # fmt: skip
    with engine.connect() as conn:
        if not model:
            model = (
                conn.execute(
                    select(a.model).where(*answering, a.tier == "LOCAL").group_by(a.model).order_by(func.count().desc())
                ).scalar()
                or ""
            )
        columns = (a.request_id, a.occurred_at, a.has_logprobs, a.mean_logprob, a.min_logprob, a.low_prob_share,
                   a.signal_tokens, a.prior, a.confidence, a.outcome, q.score, q.reference_model,
                   requests.c.prompt_form, a.tier)  # fmt: skip
        live = (
            select(*columns)
            .join(quality_scores, and_(q.request_id == a.request_id, q.model == a.model, q.source == "shadow"))
            .outerjoin(requests, requests.c.request_id == a.request_id)
            .where(*answering, a.model == model)
        )
        explore_run = a.event_id == q.request_id + ".explore." + q.model  # router/_shadow.py's event id
        explored = (
            select(*columns)
            .join(quality_scores, and_(q.request_id == a.request_id, q.model == a.model, q.source == "explore"))
            .outerjoin(requests, requests.c.request_id == a.request_id)
            .where(explore_run, a.workload == workload, a.kind == "shadow", a.occurred_at >= since, a.model == model)
            .where(a.outcome == "ANSWERED")
        )
        both = union_all(live, explored).subquery()
        rows = conn.execute(
            select(both).order_by(both.c.occurred_at.desc()).limit(min(limit or MAX_OUTCOMES, MAX_OUTCOMES))
        ).all()
    result = ledger_pb2.OutcomeList(model=model)
    for row in rows:
        result.answers.add(
            request_id=row.request_id, occurred_at=row.occurred_at.isoformat(),
            signals=common_pb2.ConfidenceSignals(
                has_logprobs=row.has_logprobs, mean_logprob=row.mean_logprob, min_logprob=row.min_logprob,
                low_prob_token_share=row.low_prob_share, token_count=row.signal_tokens,
            ),
            prior=row.prior, confidence=row.confidence, outcome=row.outcome, score=row.score,
            reference_model=row.reference_model, prompt_form=json.loads(row.prompt_form) if row.prompt_form else [],
            tier=row.tier,
        )  # fmt: skip
    return result
