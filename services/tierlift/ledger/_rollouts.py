"""A rollout's evidence, per arm, since its stage began: the requests each arm served, how many
faulted or fell back, the arm model's answering latencies, live cost, the candidate-vs-control
judgements and the feedback. The assessor's controller decides from this (assessor/_rollouts.py);
the ledger only counts."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, and_, func, select

from tierlift.core import money
from tierlift.ledger._schema import attempts, feedback, quality_scores, requests
from tierlift.v1 import ledger_pb2

ARMS = ("control", "candidate")
MAX_LATENCIES = 5_000  # the latest per arm: enough for a p95 bound, bounded in size


def rollout_evidence(
    engine: Engine, rollout_id: str, since: datetime, control_model: str, candidate_model: str
) -> ledger_pb2.RolloutEvidence:
    r, a, q, f = requests.c, attempts.c, quality_scores.c, feedback.c
    arm_model = {"control": control_model, "candidate": candidate_model}
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
            elif final_model != arm_model[arm]:
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
                .where(*mine, r.arm == arm, a.kind == "live", a.model == arm_model[arm],
                       a.outcome.in_(("ANSWERED", "LOW_CONFIDENCE")))
                .order_by(a.occurred_at.desc())
                .limit(MAX_LATENCIES)
            ).scalars().all()  # fmt: skip
            arms[arm].latency_ms.extend(latencies)
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
