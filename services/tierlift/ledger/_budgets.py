"""Budgets per tenant (and optionally workload), per UTC day or month. After each stored batch
the ledger re-checks the budgets the batch touched and publishes a `BudgetState` event when a
budget's state changes, so routers learn of it without asking the database per request."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import metrics
from sqlalchemy import delete, select

from tierlift.core import money
from tierlift.core.bus import EventBus, budget_subject
from tierlift.core.ids import is_slug
from tierlift.core.logging import get_logger
from tierlift.ledger import _metrics
from tierlift.ledger._schema import budgets
from tierlift.ledger._store import LedgerStore
from tierlift.v1 import events_pb2

log = get_logger(__name__)
bad_budget_rows = metrics.get_meter("tierlift.ledger").create_counter(
    "tierlift.ledger.bad_budget_rows", description="Stored budgets set aside because they can never be published"
)
PERIODS = ("day", "month")
ACTIONS = ("local_only", "reject")
DEFAULT_SOFT_RATIO = 0.8
DELETED = "deleted"  # a budget's last state: routers forget it


def period_start(period: str, now: datetime) -> date:
    today = now.astimezone(UTC).date()
    return today if period == "day" else today.replace(day=1)


def state_of(spent: Decimal, limit: Decimal, soft_ratio: float) -> str:
    if spent >= limit:
        return "hard_exceeded"
    if spent >= limit * Decimal(str(soft_ratio)):
        return "soft_exceeded"
    return "ok"


class BudgetWatcher:
    def __init__(self, bus: EventBus, store: LedgerStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.bus, self.store, self.clock = bus, store, clock
        # per budget, what routers were last told: (state, action, limit, strict)
        self._published: dict[tuple[str, str, str], tuple[str, str, Decimal, bool]] = {}
        self._set_aside_rows: set[tuple[str, str, str]] = set()
        self._version = 0

    def evaluate(self, budget: dict[str, Any]) -> tuple[Decimal, str]:
        spent = self.store.spent_since(
            budget["tenant"], budget["workload"], period_start(budget["period"], self.clock())
        )
        return spent, state_of(spent, budget["limit_usd"], budget["soft_ratio"])

    async def check(self, touched: set[tuple[str, str]] | None = None) -> None:
        """Re-evaluate the budgets covering `touched` (tenant, workload) pairs; None = all.
        A stored row that can never be published (a tenant that is not a slug, written before
        the slug check was strict) is set aside once, not allowed to stop every other budget."""
        for budget in await asyncio.to_thread(self.store.budgets):
            if not is_slug(budget["tenant"]) or (budget["workload"] and not is_slug(budget["workload"])):
                await self._set_aside(budget)
                continue
            if touched is not None and not any(
                t == budget["tenant"] and budget["workload"] in ("", w) for t, w in touched
            ):
                continue
            spent, state = await asyncio.to_thread(self.evaluate, budget)
            _metrics.record_budget(budget, spent, state)
            key = (budget["tenant"], budget["workload"], budget["period"])
            told = (state, budget["action"], budget["limit_usd"], bool(budget.get("strict", False)))
            if self._published.get(key) != told:  # a new state, action, limit or mode: every router hears it
                await self._publish(budget, spent, state)
                self._published[key] = told

    async def delete(self, tenant: str, workload: str, period: str) -> dict[str, Any] | None:
        """Remove a budget (None: there is none); routers hear a last state, "deleted", and drop it."""
        budget = await asyncio.to_thread(self._delete_row, tenant, workload, period)
        if budget is not None:
            spent, _ = await asyncio.to_thread(self.evaluate, budget)
            await self._publish(budget, spent, DELETED)
            _metrics.record_budget(budget, spent, DELETED)
            self._published.pop((tenant, workload, period), None)
        return budget

    def _delete_row(self, tenant: str, workload: str, period: str) -> dict[str, Any] | None:
        b = budgets.c
        which = (b.tenant == tenant, b.workload == workload, b.period == period)
        with self.store.engine.begin() as conn:
            row = conn.execute(select(budgets).where(*which)).mappings().one_or_none()
            conn.execute(delete(budgets).where(*which))
        return dict(row) if row else None

    async def _set_aside(self, budget: dict[str, Any]) -> None:
        key = (budget["tenant"], budget["workload"], budget["period"])
        if key in self._set_aside_rows:
            return
        self._set_aside_rows.add(key)
        bad_budget_rows.add(1)
        row = {k: str(v) for k, v in budget.items()}
        await self.bus.dead_letter_data("budget", json.dumps(row).encode(), "tenant or workload is not a slug")

    async def _publish(self, budget: dict[str, Any], spent: Decimal, state: str) -> None:
        now = Timestamp()
        now.GetCurrentTime()
        # a version, never an id made of the state: "hard at 1 USD" again after a raise and a
        # lowering was an id NATS had seen within its duplicate window, and dropped
        version = max(time.time_ns(), self._version + 1)
        self._version = version
        event_id = f"budget.{budget['tenant']}.{budget['workload'] or '_all'}.{budget['period']}.v{version}"
        event = events_pb2.BudgetState(
            event_id=event_id,
            occurred_at=now,
            tenant=budget["tenant"],
            workload=budget["workload"],
            period=budget["period"],
            spent_usd=money.to_wire(spent),
            limit_usd=money.to_wire(budget["limit_usd"]),
            state=state,
            action=budget["action"],
            version=version,
            strict=bool(budget.get("strict", False)),
        )
        await self.bus.publish(budget_subject(budget["tenant"], budget["workload"], budget["period"]), event, event_id)
        log.info("budget_state", tenant=budget["tenant"], workload=budget["workload"], period=budget["period"],
                 state=state, spent_usd=event.spent_usd, limit_usd=event.limit_usd)  # fmt: skip
