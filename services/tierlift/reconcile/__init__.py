"""`tierlift reconcile`: the provider's own usage and cost reports against the ledger, per UTC
day and model. The fetchers (`_openai`, `_anthropic`) normalise each provider's report, `_ledger`
reads the ledger's side over gRPC, `_compare` is the pure comparison; the command is `tierlift.cli.reconcile`."""

from tierlift.reconcile._compare import DayUsage, Line, Reconciliation, Thresholds, compare

__all__ = ["DayUsage", "Line", "Reconciliation", "Thresholds", "compare"]
