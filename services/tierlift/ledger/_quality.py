"""Quality evidence in the ledger: the assessor's scores, apps' feedback and quality alerts, stored
from their events, and the per workload and model path view behind `tierlift quality`: traffic,
agreement with the reference, feedback, regenerations, escalations, latency, cost, and cost per
quality point (cost ÷ agreement)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Table, and_, func, select

from tierlift.core import bus as bus_module
from tierlift.core import money
from tierlift.core.bus import EventBus, PoisonEvent
from tierlift.ledger._ingest import EventIngest, fitted, free_text, occurred_at, parse
from tierlift.ledger._schema import attempts, feedback, quality_alerts, quality_scores, requests
from tierlift.ledger._store import dialect_insert
from tierlift.v1 import events_pb2, ledger_pb2


def score_row(data: bytes) -> dict[str, Any]:
    e = parse(events_pb2.QualityScored, data)
    if not 0.0 <= e.score <= 1.0:
        raise PoisonEvent(f"score: {e.score} is outside 0..1")
    return {"event_id": e.event_id[:128], "request_id": e.request_id[:64], "tenant": e.tenant[:64],
            "workload": e.workload[:64], "model": e.model[:128], "reference_model": e.reference_model[:128],
            "method": e.method[:16], "score": e.score, "source": e.source[:8], "occurred_at": occurred_at(e),
            "rollout_id": e.rollout_id[:64]}  # fmt: skip


def feedback_row(data: bytes) -> dict[str, Any]:
    e = parse(events_pb2.FeedbackGiven, data)
    if e.rating not in (-1, 0, 1):
        raise PoisonEvent(f"rating: {e.rating} is not -1, 0 or 1")
    return {"event_id": e.event_id[:128], "request_id": e.request_id[:64], "tenant": e.tenant[:64],
            "rating": e.rating, "regenerated": e.regenerated, "comment": free_text(e.comment, 1000),
            "occurred_at": occurred_at(e)}  # fmt: skip


def alert_row(data: bytes) -> dict[str, Any]:
    e = parse(events_pb2.QualityAlert, data, required=("event_id", "model"))
    return {"event_id": e.event_id[:128], "workload": e.workload[:64], "model": e.model[:128],
            "reason": free_text(e.reason, 512), "observed": e.observed, "baseline": e.baseline, "window": e.window,
            "occurred_at": occurred_at(e)}  # fmt: skip


class QualityStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = dialect_insert(engine)

    def insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """A batch in one transaction, once per event id (a redelivered event changes nothing)."""
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self._insert(table).on_conflict_do_nothing(index_elements=["event_id"]), list(rows))

    def report(self, tenant: str, workload: str, since: datetime, until: datetime) -> ledger_pb2.QualityReport:
        r, a, q, f = requests.c, attempts.c, quality_scores.c, feedback.c
        where = [r.occurred_at >= since, r.occurred_at < until, r.answered.is_(True)]
        where += [r.tenant == tenant] if tenant else []
        where += [r.workload == workload] if workload else []
        with self.engine.connect() as conn:
            served = conn.execute(
                select(r.request_id, r.workload, r.final_model, r.final_tier, r.escalated, r.regenerated,
                       r.total_cost_usd).where(*where)
            ).all()  # fmt: skip
            latency = conn.execute(
                select(r.workload, a.model, a.latency_ms)
                .join(requests, and_(r.request_id == a.request_id, r.final_model == a.model))
                .where(*where, a.kind == "live", a.outcome == "ANSWERED")
            ).all()
            scores = conn.execute(
                select(q.source, q.workload, q.model, func.count(), func.avg(q.score))
                .where(q.occurred_at >= since, q.occurred_at < until, *([q.workload == workload] if workload else []),
                       # golden sets run under the assessor's own tenant: every reader of the workload sees them
                       *([(q.tenant == tenant) | (q.source == "suite")] if tenant else []))
                .group_by(q.source, q.workload, q.model)
            ).all()  # fmt: skip
            ratings = conn.execute(
                select(r.workload, r.final_model, func.count(), func.avg(f.rating))
                .join(requests, and_(r.request_id == f.request_id, r.tenant == f.tenant))
                .where(*where)
                .group_by(r.workload, r.final_model)
            ).all()
            apart = [a.kind != "live", a.occurred_at >= since, a.occurred_at < until]
            apart += [a.tenant == tenant] if tenant else []
            apart += [a.workload == workload] if workload else []
            costs: dict[str, Decimal] = defaultdict(Decimal)
            for kind, cost in conn.execute(select(a.kind, a.cost_usd).where(*apart)):
                costs[kind] += cost
            alerts = conn.execute(
                select(quality_alerts).where(quality_alerts.c.occurred_at >= since,
                                             *([quality_alerts.c.workload == workload] if workload else []))
                .order_by(quality_alerts.c.occurred_at.desc()).limit(50)
            ).mappings().all()  # fmt: skip
        report = _report(served, latency, scores, ratings, costs["shadow"], alerts)
        report.judge_cost_usd = money.to_wire(costs["judge"])
        return report


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _report(
    served: Sequence[Any],
    latency: Sequence[Any],
    scores: Sequence[Any],
    ratings: Sequence[Any],
    shadow_cost: Decimal,
    alerts: Sequence[Any],
) -> ledger_pb2.QualityReport:
    paths: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in served:
        paths[row.workload, row.final_model].append(row)
    per_workload: dict[str, int] = defaultdict(int)
    for (workload, _), rows in paths.items():
        per_workload[workload] += len(rows)
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    for workload, model, ms in latency:
        latencies[workload, model].append(ms)
    scored = {(w, m): (n, mean) for source, w, m, n, mean in scores if source == "shadow"}
    suites = {(w, m): float(mean) for source, w, m, _, mean in scores if source == "suite"}
    for key in suites.keys() - paths.keys():  # a path only the golden set has tried yet
        paths[key] = []
    rated = {(w, m): (n, mean) for w, m, n, mean in ratings}
    report = ledger_pb2.QualityReport(shadow_cost_usd=money.to_wire(shadow_cost))
    for (workload, model), rows in sorted(paths.items()):
        n = len(rows) or 1  # rates of a path without live traffic are 0
        cost = sum((row.total_cost_usd for row in rows), Decimal(0))
        count, agreement = scored.get((workload, model), (0, None))
        feedback_count, feedback_mean = rated.get((workload, model), (0, None))
        line = ledger_pb2.QualityLine(
            workload=workload, model=model, tier=rows[0].final_tier if rows else "", requests=len(rows),
            share=len(rows) / per_workload[workload] if rows else 0.0, suite_score=suites.get((workload, model), -1.0),
            scored=count, agreement=-1.0 if agreement is None else float(agreement), feedback=feedback_count,
            feedback_score=float(feedback_mean or 0.0),
            regeneration_rate=sum(row.regenerated for row in rows) / n,
            escalation_rate=sum(row.escalated for row in rows) / n,
            p50_latency_ms=statistics.median(latencies[workload, model]) if latencies[workload, model] else 0.0,
            p95_latency_ms=_percentile(latencies[workload, model], 0.95), cost_usd=money.to_wire(cost),
        )  # fmt: skip
        if agreement:  # the cost of one point of agreement: what a cheaper path buys per unit of quality
            line.cost_per_quality_point = money.to_wire(money.quantize(cost / Decimal(str(agreement))))
        report.lines.append(line)
    for alert in alerts:
        report.alerts.append(
            ledger_pb2.QualityAlertEntry(
                occurred_at=alert["occurred_at"].isoformat(),
                workload=alert["workload"],
                model=alert["model"],
                reason=alert["reason"],
                observed=alert["observed"],
                baseline=alert["baseline"],
                window=alert["window"],
            )
        )
    return report


def fitting(table: Table, to_row: Callable[[bytes], dict[str, Any]]) -> Callable[[bytes], dict[str, Any]]:
    """`to_row`, refusing a row that does not fit `table` (a NUL: lengths are cut to fit above)."""
    return lambda data: fitted(table, to_row(data))


def quality_ingests(bus: EventBus, store: QualityStore) -> dict[str, EventIngest]:
    """subject -> handler for the quality events."""

    def ingest(subject: str, table: Table, to_row: Any) -> EventIngest:
        return EventIngest(bus, subject, table.name, fitting(table, to_row), lambda rows: store.insert(table, rows))

    return {
        bus_module.SUBJECT_SCORED: ingest(bus_module.SUBJECT_SCORED, quality_scores, score_row),
        bus_module.SUBJECT_ALERT: ingest(bus_module.SUBJECT_ALERT, quality_alerts, alert_row),
        bus_module.SUBJECT_FEEDBACK: ingest(bus_module.SUBJECT_FEEDBACK, feedback, feedback_row),
    }
