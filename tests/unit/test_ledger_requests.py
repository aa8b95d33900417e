"""Ledger.ListRequests' search (ledger/_requests.py) on a real SQLite file: each filter, newest
first, the limit, and a request that was not answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert

from tierlift.ledger._requests import find_requests, summary
from tierlift.ledger._schema import metadata, requests
from tierlift.ledger._store import make_engine
from tierlift.v1 import common_pb2, ledger_pb2

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _row(n: int, tenant: str, model: str, answered: bool = True, escalated: bool = False) -> dict[str, object]:
    return {"request_id": f"r{n}", "event_id": f"e{n}", "tenant": tenant, "workload": "chat", "answered": answered,
            "final_tier": "LOCAL" if answered else "", "final_model": model if answered else "", "attempt_count": 2,
            "escalated": escalated, "total_cost_usd": Decimal("0.000123"), "occurred_at": NOW - timedelta(minutes=n),
            "error": "" if answered else "every rung failed"}  # fmt: skip


def test_requests_are_found_by_tenant_model_and_outcome_newest_first(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    metadata.create_all(engine)
    rows = [_row(1, "dev", "gemma"), _row(2, "dev", "gpt", escalated=True), _row(3, "dev", "gemma", answered=False),
            _row(4, "acme", "gemma")]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(requests), rows)

    def ids(tenant: str = "", **query: object) -> list[str]:
        found = find_requests(engine, ledger_pb2.RequestQuery(**query), tenant, None, None)  # type: ignore[arg-type]
        return [r["request_id"] for r in found]

    assert ids() == ["r1", "r2", "r3", "r4"]
    assert ids("dev") == ["r1", "r2", "r3"]
    assert ids(model="gemma") == ["r1", "r4"]
    assert ids(outcome="escalated") == ["r2"]
    assert ids(outcome="failed") == ["r3"]
    assert ids(outcome="answered", limit=2) == ["r1", "r2"]
    since = find_requests(engine, ledger_pb2.RequestQuery(), "", NOW - timedelta(minutes=2, seconds=30), None)
    assert [r["request_id"] for r in since] == ["r1", "r2"]
    failed = summary(find_requests(engine, ledger_pb2.RequestQuery(outcome="failed"), "", None, None)[0])
    assert failed.final_tier == common_pb2.TIER_UNSPECIFIED and failed.error == "every rung failed"
    assert (
        summary(find_requests(engine, ledger_pb2.RequestQuery(), "dev", None, None)[0]).occurred_at
        == (NOW - timedelta(minutes=1)).isoformat()
    )
    engine.dispose()
