"""Quality evidence in the ledger: the assessor's scores, apps' feedback and quality alerts, stored
from their events, and the per workload and model path view behind `tierlift quality`: traffic,
agreement with the reference, feedback, regenerations, escalations, latency, cost, and cost per
quality point (cost ÷ agreement)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Table, and_, case, func, or_, select

from tierlift.core import bus as bus_module
from tierlift.core import money
from tierlift.core.bus import EventBus, PoisonEvent
from tierlift.ledger._ingest import EventIngest, fitted, free_text, occurred_at, parse
from tierlift.ledger._schema import answer_latencies, attempts, feedback, quality_alerts, quality_scores, requests
from tierlift.ledger._store import _usd_sum, _with_usd_total, dialect_insert
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

    def _read(self, query: Any) -> Sequence[Any]:
        with self.engine.connect() as conn:
            return conn.execute(query).all()

    def report(self, tenant: str, workload: str, since: datetime, until: datetime) -> ledger_pb2.QualityReport:
        r, a, q, f = requests.c, attempts.c, quality_scores.c, feedback.c
        where = [r.occurred_at >= since, r.occurred_at < until, r.answered.is_(True)]
        where += [r.tenant == tenant] if tenant else []
        where += [r.workload == workload] if workload else []
        # the latencies (ranked in SQL: most of the time) on a second connection while the rest is
        # read on this one
        lat = answer_latencies.c
        timed = [lat.occurred_at >= since, lat.occurred_at < until]
        timed += [lat.tenant == tenant] if tenant else []
        timed += [lat.workload == workload] if workload else []
        with ThreadPoolExecutor(max_workers=1) as pool, self.engine.connect() as conn:
            ranked = pool.submit(self._read, _latency_ranks(timed))
            served = {
                (row.workload, row.final_model): _with_usd_total(row._mapping) for row in conn.execute(_served(where))
            }
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
            summed = select(a.kind, *_usd_sum(a.cost_usd)).where(*apart).group_by(a.kind)
            costs = {row["kind"]: _with_usd_total(row)["cost_usd"] for row in conn.execute(summed).mappings()}
            alerts = conn.execute(
                select(quality_alerts).where(quality_alerts.c.occurred_at >= since,
                                             *([quality_alerts.c.workload == workload] if workload else []))
                .order_by(quality_alerts.c.occurred_at.desc()).limit(50)
            ).mappings().all()  # fmt: skip
            latencies = _latencies(ranked.result())
        report = _report(served, latencies, scores, ratings, costs.get("shadow", Decimal(0)), alerts)
        report.judge_cost_usd = money.to_wire(costs.get("judge", Decimal(0)))
        return report


def _served(where: Sequence[Any]) -> Any:
    """The answered requests of the window counted per (workload, model) path: how many, the tier,
    how many were regenerated or escalated, and what they cost in all."""
    r = requests.c
    return (
        select(r.workload, r.final_model, func.count().label("requests"), func.min(r.final_tier).label("tier"),
               func.sum(case((r.regenerated, 1), else_=0)).label("regenerated"),
               func.sum(case((r.escalated, 1), else_=0)).label("escalated"), *_usd_sum(r.total_cost_usd))
        .where(*where)
        .group_by(r.workload, r.final_model)
    )  # fmt: skip


def _latency_ranks(where: Sequence[Any]) -> Any:
    """The latencies that the p50 and p95 of each (workload, model) path are made of, ranked in
    SQL (window functions: PostgreSQL and SQLite alike): the middle one or two and the
    int(0.95 * n)-th from the lowest (0-based), each row as (workload, model, n, rank, latency).
    The latency of a request is that of its live ANSWERED attempts on its final model: the
    ledger keeps them, with the request's time, tenant and workload, in `answer_latencies`
    (ledger/_outcomes.py), so `where` (on those columns) reads the window's range of that narrow
    table, not a join of the window's requests with every attempt."""
    lat = answer_latencies.c
    path = (lat.workload, lat.model)
    ranked = (
        select(lat.workload, lat.model, lat.latency_ms,
               func.row_number().over(partition_by=path, order_by=lat.latency_ms).label("rank"),
               func.count().over(partition_by=path).label("n"))
        .where(*where)
        .subquery()
    )  # fmt: skip
    n, rank = ranked.c.n, ranked.c.rank
    wanted = or_(rank == n // 2 + 1, and_(n % 2 == 0, rank == n // 2), rank == n * 95 // 100 + 1)
    return select(ranked.c.workload, ranked.c.model, n, rank, ranked.c.latency_ms).where(wanted)


def _latencies(ranked: Sequence[Any]) -> dict[tuple[str, str], tuple[float, float]]:
    """Each path's (p50, p95) from `_latency_ranks`: the median as statistics.median takes it (the
    mean of the middle two of an even count), the p95 the value int(0.95 * n) places up (counted
    as 95 * n // 100, which is the same for every count below 5,000,000)."""
    at: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    counts: dict[tuple[str, str], int] = {}
    for workload, model, n, rank, ms in ranked:
        at[workload, model][int(rank)] = ms
        counts[workload, model] = int(n)
    out = {}
    for key, n in counts.items():
        values = at[key]
        p50 = values[n // 2 + 1] if n % 2 else (values[n // 2] + values[n // 2 + 1]) / 2
        out[key] = (p50, values[n * 95 // 100 + 1])
    return out


def _report(
    served: dict[tuple[str, str], dict[str, Any]],
    latencies: dict[tuple[str, str], tuple[float, float]],
    scores: Sequence[Any],
    ratings: Sequence[Any],
    shadow_cost: Decimal,
    alerts: Sequence[Any],
) -> ledger_pb2.QualityReport:
    paths = dict(served)
    per_workload: dict[str, int] = defaultdict(int)
    for (workload, _), path in paths.items():
        per_workload[workload] += path["requests"]
    scored = {(w, m): (n, mean) for source, w, m, n, mean in scores if source == "shadow"}
    suites = {(w, m): float(mean) for source, w, m, _, mean in scores if source == "suite"}
    empty = {"requests": 0, "tier": "", "regenerated": 0, "escalated": 0, "cost_usd": Decimal(0)}
    for key in suites.keys() - paths.keys():  # a path only the golden set has tried yet
        paths[key] = empty
    rated = {(w, m): (n, mean) for w, m, n, mean in ratings}
    report = ledger_pb2.QualityReport(shadow_cost_usd=money.to_wire(shadow_cost))
    for (workload, model), path in sorted(paths.items()):
        requests_n = int(path["requests"])
        n = requests_n or 1  # rates of a path without live traffic are 0
        cost = path["cost_usd"]
        count, agreement = scored.get((workload, model), (0, None))
        feedback_count, feedback_mean = rated.get((workload, model), (0, None))
        p50, p95 = latencies.get((workload, model), (0.0, 0.0))
        line = ledger_pb2.QualityLine(
            workload=workload, model=model, tier=path["tier"], requests=requests_n,
            share=requests_n / per_workload[workload] if requests_n else 0.0,
            suite_score=suites.get((workload, model), -1.0), scored=count,
            agreement=-1.0 if agreement is None else float(agreement), feedback=feedback_count,
            feedback_score=float(feedback_mean or 0.0), regeneration_rate=int(path["regenerated"]) / n,
            escalation_rate=int(path["escalated"]) / n, p50_latency_ms=p50, p95_latency_ms=p95,
            cost_usd=money.to_wire(cost),
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
