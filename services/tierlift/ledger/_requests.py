"""Ledger.ListRequests: the latest requests that match a search, from the `requests` table (one
row per ended request; no prompt or answer text is stored). The web console's Requests page
searches with it; one request's page reads its row (where it went and why) and ListAttempts tells
the rest of its story. Also GetReport's routing mix: the fallback rate and the data classes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, case, exists, func, select, union_all

from tierlift.core import money
from tierlift.core.catalog import TIERS
from tierlift.ledger._schema import FAULT, LIVE, attempts, daily_requests, requests
from tierlift.ledger._store import _filtered, _midnight, _utc, _whole_days
from tierlift.v1 import common_pb2, ledger_pb2, router_pb2

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
OUTCOMES = ("", "answered", "escalated", "failed")


def find_requests(
    engine: Engine,
    query: ledger_pb2.RequestQuery,
    tenant: str,
    since: datetime | None,
    until: datetime | None,
) -> list[dict[str, Any]]:
    """Rows newest first; `tenant` is the caller's scope (already checked), not the query's."""
    r = requests.c
    rows = select(requests).order_by(r.occurred_at.desc(), r.request_id)
    if tenant:
        rows = rows.where(r.tenant == tenant)
    if query.request_id:
        rows = rows.where(r.request_id == query.request_id)
    if query.workload:
        rows = rows.where(r.workload == query.workload)
    if query.model:
        rows = rows.where(r.final_model == query.model)
    if query.outcome == "answered":
        rows = rows.where(r.answered.is_(True))
    elif query.outcome == "escalated":
        rows = rows.where(r.answered.is_(True), r.escalated.is_(True))
    elif query.outcome == "failed":
        rows = rows.where(r.answered.is_(False))
    if since:
        rows = rows.where(r.occurred_at >= since)
    if until:
        rows = rows.where(r.occurred_at < until)
    rows = rows.limit(min(query.limit or DEFAULT_LIMIT, MAX_LIMIT))
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(rows).mappings().all()]


def summary(row: dict[str, Any]) -> ledger_pb2.RequestSummary:
    occurred: datetime = row["occurred_at"]
    occurred = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)  # SQLite keeps no zone
    return ledger_pb2.RequestSummary(
        request_id=row["request_id"],
        occurred_at=occurred.isoformat(),
        tenant=row["tenant"],
        workload=row["workload"],
        final_tier=TIERS.get(row["final_tier"], common_pb2.TIER_UNSPECIFIED),
        final_model=row["final_model"],
        attempts=row["attempt_count"],
        answered=row["answered"],
        escalated=row["escalated"],
        total_cost_usd=money.to_wire(row["total_cost_usd"]),
        error=row["error"],
        rollout_id=row["rollout_id"],
        arm=row["arm"],
        data_class=row["data_class"],
        trace_id=row["trace_id"],
        **_reasons(row["reasons"]),
    )


def _reasons(stored: str) -> dict[str, Any]:
    """The `reasons` column (ledger/_ingest.py `why`) as RequestSummary fields; "" = none kept."""
    if not stored:
        return {}
    try:
        why = json.loads(stored)
    except ValueError:  # written by `why` only; a row edited by hand must not fail the whole search
        return {}
    return {
        "reasons": why["plan"],
        "ladder": [
            router_pb2.Rung(tier=TIERS.get(t, common_pb2.TIER_UNSPECIFIED), model=m, reason=r)
            for t, m, r in why["ladder"]
        ],
        "excluded": [router_pb2.Exclusion(model=m, reason=r) for m, r in why["excluded"]],
        "reasons_cut": why["cut"],
    }


UNRECORDED = "UNRECORDED"  # the data class of a request stored before the ledger kept it


def routing_mix(
    engine: Engine, tenant: str, workload: str, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    """Ended requests counted in SQL by (answered, final tier, final model, data class, escalated),
    each group with how many of its answered requests fell back. A request fell back when it was
    answered and at least one of its live attempts (not a shadow's or the judge's) ended FAULT: the
    ladder moved past an error, a timeout, an unavailable provider or a call billed unsettled before
    a later rung answered (the answering attempt itself is never a FAULT). Escalations on low
    confidence are no fallback. The window's whole UTC days are read from the daily outcome rollups
    (`daily_requests`, which hold exactly their requests' counts: ledger/_outcomes.py); only the
    part-days at its ends are counted from the requests, as LedgerStore.spend reads spend. The
    groups also give the outcome counts (`outcomes_of`)."""
    days = _whole_days(since, until)
    if days is None:
        parts = [_counted(tenant, workload, since, until)]
    else:
        first, last = days
        d = daily_requests.c
        # summed apart (in parallel on PostgreSQL) before the part-days join them: ~2,500 rows a day
        day_keys = [d[k] for k in _MIX_KEYS]
        rollups = select(*day_keys, func.sum(d.requests).label("requests"), func.sum(d.fell_back).label("fell_back"))
        rollups = _filtered(rollups.group_by(*day_keys), d, tenant, workload)
        rollups = rollups.where(d.day >= first) if first else rollups
        parts = [rollups.where(d.day < last) if last else rollups]
        if since is not None and first is not None and _utc(since) < _midnight(first):
            parts.append(_counted(tenant, workload, since, _midnight(first)))
        if until is not None and last is not None and _midnight(last) < _utc(until):
            parts.append(_counted(tenant, workload, _midnight(last), until))
    rows = union_all(*parts).subquery()
    u = rows.c
    keys = [u[k] for k in _MIX_KEYS]
    query = (
        select(*keys, func.sum(u.requests).label("requests"), func.sum(u.fell_back).label("fell_back"))
        .group_by(*keys)
        .having(func.sum(u.requests) > 0)  # a group whose requests all moved (replaced) to another
    )
    with engine.connect() as conn:
        groups = [dict(row) for row in conn.execute(query).mappings().all()]
    for g in groups:  # PostgreSQL sums integers as NUMERIC: counts come back as Decimal there
        g["answered"], g["escalated"] = bool(g["answered"]), bool(g["escalated"])
        g["requests"], g["fell_back"] = int(g["requests"]), int(g["fell_back"] or 0)
        g["data_class"] = g["data_class"] or UNRECORDED
    return groups


_MIX_KEYS = ("answered", "final_tier", "final_model", "data_class", "escalated")


def _counted(tenant: str, workload: str, since: datetime | None, until: datetime | None) -> Any:
    """The requests of [since, until) grouped as `routing_mix` groups them, counted from the rows.
    The live FAULT attempts have their own small partial index (ix_attempts_live_faults):
    PostgreSQL hashes it once or probes it per request, instead of the index of every attempt."""
    r, a = requests.c, attempts.c
    faulted = exists().where(a.request_id == r.request_id, a.tenant == r.tenant, a.kind == LIVE, a.outcome == FAULT)
    fell_back = func.sum(case((and_(r.answered.is_(True), faulted), 1), else_=0))
    keys = [r[k] for k in _MIX_KEYS]
    query = select(*keys, func.count().label("requests"), fell_back.label("fell_back")).group_by(*keys)
    query = _filtered(query, r, tenant, workload)
    if since:
        query = query.where(r.occurred_at >= since)
    if until:
        query = query.where(r.occurred_at < until)
    return query


def outcomes_of(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`routing_mix`'s groups as LedgerStore.request_outcomes counts them: by (answered, final
    tier, escalated)."""
    counts: dict[tuple[bool, str, bool], int] = {}
    for g in groups:
        key = (bool(g["answered"]), g["final_tier"], bool(g["escalated"]))
        counts[key] = counts.get(key, 0) + g["requests"]
    return [{"answered": k[0], "final_tier": k[1], "escalated": k[2], "requests": n} for k, n in sorted(counts.items())]


def add_routing_mix(report: ledger_pb2.Report, groups: list[dict[str, Any]]) -> None:
    """Put `routing_mix`'s groups (a handful per tier, model and class) into `report`."""
    routes: dict[tuple[str, str], ledger_pb2.RouteLine] = {}
    for g in groups:
        report.requests_by_data_class[g["data_class"]] += g["requests"]
        if not g["answered"]:
            continue
        report.fell_back += g["fell_back"]
        route = routes.get((g["final_tier"], g["final_model"]))
        if route is None:
            route = ledger_pb2.RouteLine(
                tier=TIERS.get(g["final_tier"], common_pb2.TIER_UNSPECIFIED), model=g["final_model"]
            )
            routes[(g["final_tier"], g["final_model"])] = route
        route.answered += g["requests"]
        route.fell_back += g["fell_back"]
        route.requests_by_data_class[g["data_class"]] += g["requests"]
    answered = sum(route.answered for route in routes.values())
    report.fallback_rate = report.fell_back / answered if answered else 0.0
    for (_tier, _model), route in sorted(routes.items()):
        route.fallback_rate = route.fell_back / route.answered
        report.routes.append(route)
