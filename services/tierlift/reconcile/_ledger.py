"""The ledger's side: live spend per UTC day and model from GetSpend (one call a day, since and
until at midnight UTC), the provider's models only, named as the provider names them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from tierlift.core.catalog import Catalog
from tierlift.reconcile._compare import DayUsage
from tierlift.v1 import ledger_pb2


def provider_models(catalog: Catalog, provider: str) -> dict[str, str]:
    """Catalog id -> the provider's own name (upstream_model, else the id) of its models."""
    return {m.id: m.upstream_model or m.id for m in catalog.models if m.provider == provider}


def days(first_day: date, last_day: date) -> Iterator[date]:
    for n in range((last_day - first_day).days + 1):
        yield first_day + timedelta(days=n)


def ledger_rows(ledger: Any, models: Mapping[str, str], first_day: date, last_day: date) -> list[DayUsage]:
    """Every tenant's and workload's live attempts of `models` (catalog id -> provider name)."""
    rows: list[DayUsage] = []
    for day in days(first_day, last_day):
        since = datetime.combine(day, time.min, UTC)
        query = ledger_pb2.SpendQuery(since=since.isoformat(), until=(since + timedelta(days=1)).isoformat())
        report = ledger.GetSpend(query, timeout=30)
        for line in report.lines:
            if line.model not in models:
                continue
            cache_read = sum(k.tokens for k in line.kinds if k.kind == "cache_read")
            rows.append(DayUsage(day, models[line.model], line.input_tokens, line.output_tokens, cache_read,
                                 line.attempts, Decimal(line.cost_usd or "0")))  # fmt: skip
    return rows
