"""Anthropic's usage report (`/v1/organizations/usage_report/messages`, grouped by model) and
cost report (`/v1/organizations/cost_report`, grouped by description) per UTC day, with an admin
key (`ANTHROPIC_ADMIN_KEY`, in `x-api-key`). The SDK wraps neither (only the beta analytics
API), so httpx. Cost amounts are decimal strings in cents; the cost report leaves out Priority
Tier costs (Anthropic's documentation says so)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from tierlift.reconcile._compare import DayUsage, ReportError, model_name

API_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
PAGE_DAYS = 31
CENTS = Decimal(100)


def _day(starting_at: str) -> date:
    return datetime.fromisoformat(starting_at.replace("Z", "+00:00")).astimezone(UTC).date()


def usage_rows(buckets: Iterable[dict[str, Any]], known: Iterable[str]) -> Iterator[DayUsage]:
    names = list(known)
    for bucket in buckets:
        for r in bucket.get("results") or ():
            writes = r.get("cache_creation") or {}
            cache_read = int(r.get("cache_read_input_tokens") or 0)
            inputs = (int(r.get("uncached_input_tokens") or 0) + cache_read
                      + int(writes.get("ephemeral_5m_input_tokens") or 0)
                      + int(writes.get("ephemeral_1h_input_tokens") or 0))  # fmt: skip
            yield DayUsage(
                day=_day(bucket["starting_at"]),
                model=model_name(r.get("model") or "", names),
                input_tokens=inputs,
                output_tokens=int(r.get("output_tokens") or 0),
                cache_read_tokens=cache_read,
            )


def cost_rows(buckets: Iterable[dict[str, Any]], known: Iterable[str]) -> Iterator[DayUsage]:
    names = list(known)
    for bucket in buckets:
        for r in bucket.get("results") or ():
            if str(r.get("currency") or "USD").upper() != "USD":
                raise ReportError(f"Anthropic cost report: an amount in {r.get('currency')!r}, not USD")
            yield DayUsage(
                day=_day(bucket["starting_at"]),
                model=model_name(r.get("model") or r.get("description") or "", names),
                cost_usd=Decimal(str(r.get("amount") or "0")) / CENTS,
            )


def _pages(client: httpx.Client, path: str, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    page: str | None = None
    while True:
        try:
            response = client.get(path, params={**query, **({"page": page} if page else {})})
            if response.status_code != 200:
                raise ReportError(f"Anthropic {path}: HTTP {response.status_code}: {response.text[:300]}")
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:  # unreachable, timed out, not JSON
            raise ReportError(f"Anthropic {path}: {exc}") from None
        yield from body.get("data") or ()
        page = body.get("next_page")
        if not body.get("has_more") or not page:
            return


def fetch(admin_key: str, base_url: str, first_day: date, last_day: date, known: Iterable[str]) -> list[DayUsage]:
    """Usage and cost of every model, first_day to last_day (UTC, both included)."""
    names = list(known)
    window = {
        "starting_at": f"{first_day.isoformat()}T00:00:00Z",
        "ending_at": f"{(last_day + timedelta(days=1)).isoformat()}T00:00:00Z",
        "bucket_width": "1d",
        "limit": PAGE_DAYS,
    }
    headers = {"x-api-key": admin_key, "anthropic-version": API_VERSION}
    with httpx.Client(base_url=base_url or API_URL, headers=headers, timeout=60.0) as client:
        usage = _pages(client, "/v1/organizations/usage_report/messages", {**window, "group_by[]": "model"})
        rows = list(usage_rows(usage, names))
        costs = _pages(client, "/v1/organizations/cost_report", {**window, "group_by[]": "description"})
        rows += cost_rows(costs, names)
    return rows
