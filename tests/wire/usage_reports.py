"""A local HTTP server (aiohttp, on a thread of its own) that speaks the providers' admin
reporting APIs: OpenAI's organization usage (`/v1/organization/usage/completions`) and costs
(`/v1/organization/costs`), Anthropic's usage report (`/v1/organizations/usage_report/messages`)
and cost report (`/v1/organizations/cost_report`). It serves canned days in 1-day buckets, a
few buckets a page with an opaque `next_page` cursor, refuses a wrong admin key as the providers
do, and logs every request so a test can see the pages were followed."""

from __future__ import annotations

import asyncio
import base64
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Billed:
    """What a provider says one model used and cost on one UTC day."""

    day: date
    model: str  # as the provider names it, e.g. "gpt-5-mini-2025-08-07"
    input_tokens: int  # every input token, cache reads included
    output_tokens: int
    cache_read_tokens: int
    requests: int
    input_usd: Decimal  # what the input tokens cost (cache reads included)
    output_usd: Decimal


def _cursor(index: int) -> str:
    return base64.b64encode(f"bucket:{index}".encode()).decode()


def _index(cursor: str | None) -> int:
    return int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0


class UsageReportServer:
    def __init__(self, billed: list[Billed], admin_key: str = "admin-test-key", page_buckets: int = 2) -> None:
        self.billed = billed
        self.admin_key = admin_key
        self.page_buckets = page_buckets  # buckets a page, whatever `limit` asks (to exercise paging)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # --- life -----------------------------------------------------------------------------------

    def __enter__(self) -> UsageReportServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/organization/usage/completions", self._openai_usage)
        app.router.add_get("/v1/organization/costs", self._openai_costs)
        app.router.add_get("/v1/organizations/usage_report/messages", self._anthropic_usage)
        app.router.add_get("/v1/organizations/cost_report", self._anthropic_costs)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- shared ---------------------------------------------------------------------------------

    def _days(self, first: date, end: date) -> list[date]:
        return [first + timedelta(days=n) for n in range((end - first).days)]

    def _page(self, request: web.Request, days: list[date]) -> tuple[list[date], str | None]:
        self.requests.append((request.path, dict(request.query)))
        start = _index(request.query.get("page"))
        limit = min(int(request.query.get("limit", "7")), self.page_buckets)
        page = days[start : start + limit]
        return page, _cursor(start + limit) if start + limit < len(days) else None

    def _on(self, day: date) -> list[Billed]:
        return [b for b in self.billed if b.day == day]

    # --- OpenAI ---------------------------------------------------------------------------------

    def _openai_window(self, request: web.Request) -> list[date]:
        if request.headers.get("Authorization") != f"Bearer {self.admin_key}":
            raise web.HTTPUnauthorized(
                content_type="application/json",
                text='{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}',
            )
        first = datetime.fromtimestamp(int(request.query["start_time"]), UTC).date()
        end = datetime.fromtimestamp(int(request.query["end_time"]), UTC).date()
        return self._days(first, end)

    def _openai_page(self, request: web.Request, results: Any) -> web.Response:
        days, cursor = self._page(request, self._openai_window(request))
        data = []
        for day in days:
            start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp())
            data.append({"object": "bucket", "start_time": start, "end_time": start + 86_400,
                         "results": results(day)})  # fmt: skip
        return web.json_response({"object": "page", "data": data, "has_more": cursor is not None, "next_page": cursor})

    async def _openai_usage(self, request: web.Request) -> web.Response:
        assert request.query.get("group_by[]", request.query.get("group_by")) == "model", request.query

        def results(day: date) -> list[dict[str, Any]]:
            return [
                {"object": "organization.usage.completions.result", "input_tokens": b.input_tokens,
                 "output_tokens": b.output_tokens, "input_cached_tokens": b.cache_read_tokens,
                 "input_audio_tokens": 0, "output_audio_tokens": 0, "num_model_requests": b.requests,
                 "project_id": None, "user_id": None, "api_key_id": None, "model": b.model, "batch": None}
                for b in self._on(day)
            ]  # fmt: skip

        return self._openai_page(request, results)

    async def _openai_costs(self, request: web.Request) -> web.Response:
        assert request.query.get("group_by[]", request.query.get("group_by")) == "line_item", request.query

        def results(day: date) -> list[dict[str, Any]]:
            out = []
            for b in self._on(day):
                for kind, usd in (("input", b.input_usd), ("output", b.output_usd)):
                    amount = {"value": float(usd), "currency": "usd"}  # a JSON number, as OpenAI sends it
                    out.append({"object": "organization.costs.result", "amount": amount,
                                "line_item": f"{b.model}, {kind}", "project_id": None})  # fmt: skip
            return out

        return self._openai_page(request, results)

    # --- Anthropic ------------------------------------------------------------------------------

    def _anthropic_window(self, request: web.Request) -> list[date]:
        if request.headers.get("x-api-key") != self.admin_key or not request.headers.get("anthropic-version"):
            raise web.HTTPUnauthorized(
                content_type="application/json",
                text='{"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}',
            )
        first = datetime.fromisoformat(request.query["starting_at"].replace("Z", "+00:00")).date()
        end = datetime.fromisoformat(request.query["ending_at"].replace("Z", "+00:00")).date()
        return self._days(first, end)

    def _anthropic_page(self, request: web.Request, results: Any) -> web.Response:
        days, cursor = self._page(request, self._anthropic_window(request))
        data = [{"starting_at": f"{d}T00:00:00Z", "ending_at": f"{d + timedelta(days=1)}T00:00:00Z",
                 "results": results(d)} for d in days]  # fmt: skip
        return web.json_response({"data": data, "has_more": cursor is not None, "next_page": cursor})

    async def _anthropic_usage(self, request: web.Request) -> web.Response:
        assert request.query.get("group_by[]") == "model", request.query

        def results(day: date) -> list[dict[str, Any]]:
            return [
                {"uncached_input_tokens": b.input_tokens - b.cache_read_tokens,
                 "cache_read_input_tokens": b.cache_read_tokens,
                 "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                 "output_tokens": b.output_tokens, "server_tool_use": {"web_search_requests": 0},
                 "api_key_id": None, "workspace_id": None, "model": b.model, "service_tier": None,
                 "context_window": None}
                for b in self._on(day)
            ]  # fmt: skip

        return self._anthropic_page(request, results)

    async def _anthropic_costs(self, request: web.Request) -> web.Response:
        assert request.query.get("group_by[]") == "description", request.query

        def results(day: date) -> list[dict[str, Any]]:
            out = []
            for b in self._on(day):
                for token_type, usd in (("uncached_input_tokens", b.input_usd), ("output_tokens", b.output_usd)):
                    out.append({"currency": "USD", "amount": str(usd * 100),  # cents, as a decimal string
                                "description": f"{b.model} {token_type}", "model": b.model, "cost_type": "tokens",
                                "token_type": token_type, "service_tier": "standard", "context_window": "0-200k",
                                "workspace_id": None})  # fmt: skip
            return out

        return self._anthropic_page(request, results)
