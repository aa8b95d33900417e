"""The cost ledger: prices every attempt from JetStream events into SQL and answers spend
queries."""

from switchyard.ledger._ingest import AttemptIngest, price_attempt
from switchyard.ledger._servicer import LedgerServicer
from switchyard.ledger._store import LedgerStore, make_engine

__all__ = ["AttemptIngest", "LedgerServicer", "LedgerStore", "make_engine", "price_attempt"]
