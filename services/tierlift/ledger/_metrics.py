"""The ledger's metrics: spend as it prices attempts, and each budget's state (gauges, set when
the budget is evaluated: at start, then after each batch that touches it). Money here is a float
for dashboards only: the ledger's tables hold the exact amounts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from opentelemetry import metrics

_meter = metrics.get_meter("tierlift.ledger")
cost = _meter.create_counter(
    "tierlift.ledger.cost", unit="USD", description="Spend the ledger recorded, by tier, model and kind of attempt"
)
budget_spent = _meter.create_gauge("tierlift.budget.spent", unit="USD", description="A budget's spend this period")
budget_limit = _meter.create_gauge("tierlift.budget.limit", unit="USD", description="A budget's limit")
budget_state = _meter.create_gauge(
    "tierlift.budget.state", description="1 for a budget's current state (ok, soft_exceeded, hard_exceeded), else 0"
)
STATES = ("ok", "soft_exceeded", "hard_exceeded")


def record_rows(rows: Iterable[Mapping[str, Any]]) -> None:
    """Attempt rows as stored (an attempts batch, or settled rows that hold their attempts)."""
    for row in rows:
        for attempt in row.get("attempts", (row,)):
            if "attempt_index" in attempt:  # not a request row (its cost is its attempts')
                labels = {"tierlift.tier": attempt["tier"], "gen_ai.request.model": attempt["model"],
                          "tierlift.kind": attempt.get("kind", "live")}  # fmt: skip
                cost.add(float(attempt["cost_usd"]), labels)


def record_budget(budget: Mapping[str, Any], spent: Decimal, state: str) -> None:
    """A budget just evaluated; `state` "deleted" leaves it in no state."""
    labels = {
        "tierlift.tenant": budget["tenant"],
        "tierlift.workload": budget["workload"] or "_all",
        "tierlift.budget.period": budget["period"],
    }
    budget_spent.set(float(spent), labels)
    budget_limit.set(float(budget["limit_usd"]), labels)
    for name in STATES:
        budget_state.set(1 if name == state else 0, {**labels, "tierlift.budget.state": name})
