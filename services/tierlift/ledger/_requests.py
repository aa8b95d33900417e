"""Ledger.ListRequests: the latest requests that match a search, from the `requests` table (one
row per ended request; no prompt or answer text is stored). The web console's Requests page
searches with it; ListAttempts then tells one request's story."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from tierlift.core import money
from tierlift.core.catalog import TIERS
from tierlift.ledger._schema import requests
from tierlift.v1 import common_pb2, ledger_pb2

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
    )
