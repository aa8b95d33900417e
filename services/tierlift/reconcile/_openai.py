"""OpenAI's organization usage (`/v1/organization/usage/completions`, grouped by model) and
costs (`/v1/organization/costs`, grouped by line item) per UTC day, through the official SDK's
admin client (`OPENAI_ADMIN_KEY`). A cost line item names its model first ("gpt-5-mini-2025-08-07,
input"); one that names none ("Web search tool calls") stays under its own name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tierlift.reconcile._compare import DayUsage, ReportError, model_name

PAGE_DAYS = 31  # the most 1-day buckets either endpoint gives a page


def _day(start_time: int) -> date:
    return datetime.fromtimestamp(start_time, UTC).date()


def usage_rows(buckets: Iterable[dict[str, Any]], known: Iterable[str]) -> Iterator[DayUsage]:
    names = list(known)
    for bucket in buckets:
        for r in bucket.get("results") or ():
            yield DayUsage(
                day=_day(bucket["start_time"]),
                model=model_name(r.get("model") or "", names),
                input_tokens=int(r.get("input_tokens") or 0),  # cached (and cache-write) tokens included
                output_tokens=int(r.get("output_tokens") or 0),
                cache_read_tokens=int(r.get("input_cached_tokens") or 0),
                requests=int(r.get("num_model_requests") or 0),
            )


def cost_rows(buckets: Iterable[dict[str, Any]], known: Iterable[str]) -> Iterator[DayUsage]:
    names = list(known)
    for bucket in buckets:
        for r in bucket.get("results") or ():
            amount = r.get("amount") or {}
            currency = str(amount.get("currency") or "usd").lower()
            if currency != "usd":
                raise ReportError(f"OpenAI costs: an amount in {currency!r}, not usd")
            item = str(r.get("line_item") or "")
            yield DayUsage(
                day=_day(bucket["start_time"]),
                model=model_name(item.split(",")[0].strip(), names),
                cost_usd=Decimal(str(amount.get("value") or 0)),  # a JSON number: its shortest decimal form
            )


def _pages(get: Callable[..., Any], **query: Any) -> Iterator[dict[str, Any]]:
    page: str | None = None
    while True:
        body = get(**query, **({"page": page} if page else {})).to_dict()
        yield from body.get("data") or ()
        page = body.get("next_page")
        if not body.get("has_more") or not page:
            return


def fetch(admin_key: str, base_url: str, first_day: date, last_day: date, known: Iterable[str]) -> list[DayUsage]:
    """Usage and cost of every model, first_day to last_day (UTC, both included)."""
    from openai import APIError, OpenAI

    names = list(known)
    start = int(datetime.combine(first_day, datetime.min.time(), UTC).timestamp())
    end = int(datetime.combine(last_day + timedelta(days=1), datetime.min.time(), UTC).timestamp())
    window = {"start_time": start, "end_time": end, "bucket_width": "1d", "limit": PAGE_DAYS}
    # api_key is unused by the admin endpoints; the SDK wants one
    with OpenAI(admin_api_key=admin_key, api_key=admin_key, base_url=base_url or None, max_retries=2) as client:
        usage = client.admin.organization.usage
        try:
            rows = list(usage_rows(_pages(usage.completions, group_by=["model"], **window), names))
            rows += cost_rows(_pages(usage.costs, group_by=["line_item"], **window), names)
        except APIError as exc:  # refused (the admin key), unreachable, a 5xx after the SDK's retries
            raise ReportError(f"OpenAI organization usage and costs: {exc}") from None
    return rows
