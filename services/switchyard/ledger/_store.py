"""The ledger's database access: idempotent inserts and spend queries (sync SQLAlchemy Core;
the async service calls it in a worker thread)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite

from switchyard.ledger._schema import attempts


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the ingest writer
            cur.execute("PRAGMA synchronous=NORMAL")  # durable across crashes of the process (WAL)
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


class LedgerStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialects = {"sqlite": sqlite, "postgresql": postgresql}
        if engine.dialect.name not in dialects:
            raise ValueError(f"unsupported database {engine.dialect.name}; use SQLite or PostgreSQL")
        self._insert = dialects[engine.dialect.name].insert

    def insert_attempts(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert in one transaction; rows whose event_id is already stored are skipped."""
        if not rows:
            return
        stmt = self._insert(attempts).on_conflict_do_nothing(index_elements=["event_id"])
        with self.engine.begin() as conn:
            conn.execute(stmt, list(rows))

    def spend(self, tenant: str, workload: str, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
        a = attempts.c
        query = (
            select(
                a.tenant,
                a.workload,
                a.tier,
                a.model,
                func.count().label("attempts"),
                func.sum(a.input_tokens).label("input_tokens"),
                func.sum(a.output_tokens).label("output_tokens"),
                func.sum(a.cost_usd).label("cost_usd"),
            )
            .group_by(a.tenant, a.workload, a.tier, a.model)
            .order_by(a.tenant, a.workload, a.tier, a.model)
        )
        if tenant:
            query = query.where(a.tenant == tenant)
        if workload:
            query = query.where(a.workload == workload)
        if since:
            query = query.where(a.occurred_at >= since)
        if until:
            query = query.where(a.occurred_at < until)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        # SUM keeps the Money type, so cost_usd arrives as an exact Decimal.
        return [dict(row) for row in rows]

    def attempts_for(self, request_id: str) -> list[dict[str, Any]]:
        query = select(attempts).where(attempts.c.request_id == request_id).order_by(attempts.c.attempt_index)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]


def total(lines: Sequence[dict[str, Any]]) -> Decimal:
    return sum((line["cost_usd"] for line in lines), Decimal(0))
