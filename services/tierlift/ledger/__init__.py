"""The cost ledger: prices every attempt from JetStream events into SQL and answers spend
queries."""

from tierlift.ledger._budgets import BudgetWatcher
from tierlift.ledger._ingest import EventIngest, attempt_ingest, price_attempt, request_ingest, settled_ingest
from tierlift.ledger._servicer import LedgerServicer
from tierlift.ledger._store import LedgerStore, make_engine

__all__ = [
    "BudgetWatcher",
    "EventIngest",
    "LedgerServicer",
    "LedgerStore",
    "attempt_ingest",
    "make_engine",
    "price_attempt",
    "request_ingest",
    "settled_ingest",
]
