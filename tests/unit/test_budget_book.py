"""The router's book of budgets: a request reads the budgets of its own tenant that cover its
workload, newest state each, and nothing of other tenants."""

from __future__ import annotations

from tierlift.router._budgets import BudgetBook
from tierlift.v1 import events_pb2


def state(
    tenant: str, workload: str = "", period: str = "day", status: str = "ok", version: int = 1
) -> events_pb2.BudgetState:
    return events_pb2.BudgetState(
        tenant=tenant, workload=workload, period=period, limit_usd="1", state=status, version=version
    )  # fmt: skip


def test_a_request_sees_its_tenants_budgets_for_its_workload_and_no_other_tenants() -> None:
    book = BudgetBook()
    for i in range(1000):  # many tenants, one of which is exhausted
        book.apply(state(f"tenant-{i}", status="hard_exceeded" if i == 7 else "ok"))
    book.apply(state("acme", period="month"))
    book.apply(state("acme", workload="faq", status="hard_exceeded"))
    book.apply(state("acme", workload="chat"))

    covering = book.covering("acme", "faq")
    assert [(s.workload, s.period) for s in covering] == [("", "month"), ("faq", "day")]
    assert [s.workload for s in book.exhausted("acme", "faq")] == ["faq"]
    assert book.exhausted("acme", "chat") == []
    assert book.covering("nobody", "faq") == [] and book.exhausted("nobody", "faq") == []
    assert [s.tenant for s in book.exhausted("tenant-7", "any")] == ["tenant-7"]
    assert len(book.states) == 1003


def test_an_older_state_seen_again_changes_nothing_and_a_deleted_budget_closes_nothing() -> None:
    book = BudgetBook()
    book.apply(state("acme", status="hard_exceeded", version=3))
    book.apply(state("acme", status="ok", version=2))  # a watch that restarted replays an old state
    assert [s.version for s in book.exhausted("acme", "faq")] == [3]
    book.apply(state("acme", status="deleted", version=4))
    assert book.exhausted("acme", "faq") == [] and book.covering("acme", "faq") == []
