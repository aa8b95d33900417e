"""The console's pages (GET): each asks the Ledger (or the Assessor) with the user's key and
renders what came back. Money is shown to finance and admin only; a viewer sees counts."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import os
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from tierlift.advise import measured_workload
from tierlift.console._app import BACKEND, PREFIX, TRACE_URL, redirect, refuse, render, session_of
from tierlift.core.catalog import Catalog, load_catalog, tier_name
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.economics import Advice, Ops, advise
from tierlift.router._policy_source import DEFAULT_POLICY, load_policy
from tierlift.v1 import assessor_pb2, ledger_pb2

OUTCOMES = ("", "answered", "escalated", "failed")  # as Ledger.ListRequests takes them

WINDOWS = {"1": "24 hours", "7": "7 days", "30": "30 days", "90": "90 days"}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # tenants and workloads, as the router has them
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
TIER_COLOURS = {"LOCAL": "#2e7d32", "HOSTED_OPEN": "#1565c0", "CLOSED": "#ef6c00", "FRONTIER": "#6a1b9a"}


async def login_form(request: web.Request) -> web.Response:
    return render(request, "login.html", error="")


def _window(request: web.Request) -> tuple[str, str]:
    """The chosen window (?days=1|7|30|90, default 7) as (days, RFC 3339 start)."""
    days = request.query.get("days", "7")
    days = days if days in WINDOWS else "7"
    return days, (datetime.now(UTC) - timedelta(days=int(days))).isoformat()


def _slug(request: web.Request, name: str) -> str:
    """A tenant or workload filter; anything that is not a slug is dropped, not passed on."""
    value = request.query.get(name, "").strip()
    return value if _SLUG.match(value) else ""


def _daily_chart(days: Any, money: bool) -> str:
    """Chart.js data for spend (or attempts, for a viewer) per day, one stacked dataset per tier,
    as JSON for a <script type="application/json"> block (data, not code: the CSP allows it)."""
    labels = sorted({d.day for d in days})
    by_tier: dict[str, dict[str, float]] = defaultdict(dict)
    for d in days:
        by_tier[tier_name(d.tier)][d.day] = float(Decimal(d.cost_usd or "0")) if money else d.attempts
    datasets = [
        {"label": tier, "data": [values.get(day, 0) for day in labels], "backgroundColor": TIER_COLOURS.get(tier)}
        for tier, values in sorted(by_tier.items())
    ]
    data = json.dumps({"labels": labels, "datasets": datasets, "y": "USD" if money else "attempts"})
    return data.replace("<", "\\u003c")  # no "</script>" can end the block early


async def overview(request: web.Request) -> web.Response:
    session, backend = session_of(request), request.app[BACKEND]
    days, since = _window(request)
    query = ledger_pb2.SpendQuery(since=since)
    by_model = ledger_pb2.SpendQuery(since=since, by_model=True)  # a line per tier and model: all the mix shows
    report, spend = await asyncio.gather(  # independent reads: the ledger answers both at once
        backend.ledger_call("GetReport", query, session.key), backend.ledger_call("GetSpend", by_model, session.key)
    )
    mix: dict[tuple[str, str], list[Any]] = {}
    for line in spend.lines:  # attempts and cost per tier and model
        row = mix.setdefault((tier_name(line.tier), line.model), [0, Decimal(0)])
        row[0] += line.attempts
        row[1] += Decimal(line.cost_usd or "0")
    context = {
        "days": days, "windows": WINDOWS, "report": report, "chart": _daily_chart(report.days, session.sees_money),
        "mix": sorted(mix.items()), "by_tier": sorted(report.answered_by_tier.items()),
        "classes": sorted(report.requests_by_data_class.items()), "routes": list(report.routes),
        "advice": _advice(report, int(days)) if session.sees_money else None,
    }  # fmt: skip
    template = "_overview_body.html" if request.headers.get("HX-Request") else "overview.html"
    return render(request, template, **context)


@functools.cache
def _economics() -> tuple[Catalog, dict[str, float]]:
    """The catalog's prices and the policy's expected quality per tier, as `tierlift advise` reads
    them (TIERLIFT_CATALOG and TIERLIFT_POLICY, else the packaged ones); read once."""
    catalog = load_catalog(Path(os.environ.get("TIERLIFT_CATALOG") or DEFAULT_CATALOG))
    policy = load_policy(Path(os.environ.get("TIERLIFT_POLICY") or DEFAULT_POLICY))
    return catalog, {tier_name(t): q for t, q in policy.tier_quality.items()}


def _advice(report: ledger_pb2.Report, window_days: int) -> tuple[Any, Advice] | None:
    """Self-host or API at the window's volume scaled to a month (`tierlift advise`'s arithmetic,
    its default ops cost and peak factor); None without traffic."""
    workload, measured = measured_workload(report, datetime.now(UTC).date(), Decimal(3), window_days)
    if not measured:
        return None
    catalog, quality = _economics()
    return workload, advise(catalog, workload, Ops(), quality)


def _rollup(lines: Any, field: str) -> list[tuple[str, int, Decimal]]:
    totals: dict[str, list[Any]] = {}
    for line in lines:
        key = tier_name(line.tier) if field == "tier" else getattr(line, field)
        row = totals.setdefault(key, [0, Decimal(0)])
        row[0] += line.attempts
        row[1] += Decimal(line.cost_usd or "0")
    return sorted(((k, n, c) for k, (n, c) in totals.items()), key=lambda r: (-r[2], -r[1], r[0]))


def _by_kind(report: ledger_pb2.SpendReport) -> list[tuple[str, int, Decimal]]:
    """Tokens and cost per token kind (cache reads and writes, images, audio, reasoning, text) over
    the window's lines, in KindSpend's order (ledger.proto); none when there is no line."""
    if not report.lines:
        return []
    return [(k.kind, k.tokens, Decimal(k.cost_usd or "0")) for k in report.kinds]


def _spend_query(request: web.Request) -> tuple[dict[str, str], ledger_pb2.SpendQuery]:
    days, since = _window(request)
    filters = {"days": days, "tenant": _slug(request, "tenant"), "workload": _slug(request, "workload")}
    # the lines without their kinds: the page shows the window's kinds (SpendReport.kinds), not each line's
    query = ledger_pb2.SpendQuery(tenant=filters["tenant"], workload=filters["workload"], since=since,
                                  omit_line_kinds=True)  # fmt: skip
    return filters, query


async def _spend_lines(request: web.Request) -> tuple[dict[str, str], Any]:
    session, backend = session_of(request), request.app[BACKEND]
    filters, query = _spend_query(request)
    return filters, await backend.ledger_call("GetSpend", query, session.key)


async def spend(request: web.Request) -> web.Response:
    session, backend = session_of(request), request.app[BACKEND]
    filters, query = _spend_query(request)
    query.with_days = True  # the chart's days come with the lines: no GetReport (nor its read of the requests)
    report, budgets = await asyncio.gather(  # independent reads: the ledger answers both at once
        backend.ledger_call("GetSpend", query, session.key),
        backend.ledger_call("ListBudgets", ledger_pb2.BudgetQuery(tenant=filters["tenant"]), session.key),
    )
    rollups = {field: _rollup(report.lines, field) for field in ("tenant", "workload", "tier", "model")}
    chart = _daily_chart(report.days, session.sees_money)
    return render(request, "spend.html", filters=filters, windows=WINDOWS, report=report, rollups=rollups,
                  kinds=_by_kind(report), chart=chart, budgets=[_budget(b) for b in budgets.budgets])  # fmt: skip


def _budget(budget: ledger_pb2.Budget) -> dict[str, Any]:
    limit, spent = Decimal(budget.limit_usd or "0"), Decimal(budget.spent_usd or "0")
    used = float(spent / limit) if limit > 0 else 0.0
    return {"b": budget, "used": used, "bar": min(100, round(100 * used))}


async def spend_csv(request: web.Request) -> web.StreamResponse:
    """The spend lines of the page's filters as CSV (finance and admin: it is all money)."""
    if not session_of(request).sees_money:
        return refuse(request, 403, "spend in USD is for finance and admin keys")
    filters, report = await _spend_lines(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["tenant", "workload", "tier", "model", "attempts", "input_tokens", "output_tokens", "cost_usd"])
    for line in report.lines:
        cells = [line.tenant, line.workload, tier_name(line.tier), line.model, line.attempts, line.input_tokens,
                 line.output_tokens, line.cost_usd]  # fmt: skip
        # a cell that a spreadsheet would run as a formula is quoted as text (CSV injection)
        writer.writerow([f"'{c}" if isinstance(c, str) and c[:1] in "=+-@" else c for c in cells])
    name = f"tierlift-spend-{filters['tenant'] or 'all'}-{filters['days']}d.csv"
    return web.Response(text=out.getvalue(), content_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


async def requests(request: web.Request) -> web.StreamResponse:
    """Search (Ledger.ListRequests) by tenant, workload, answering model and outcome in a window;
    an id goes straight to its request's page."""
    session, backend = session_of(request), request.app[BACKEND]
    request_id = request.query.get("request_id", "").strip()
    if request_id:
        if _REQUEST_ID.match(request_id):
            return redirect(f"{PREFIX}/requests/{request_id}")
        return refuse(request, 400, "not a request id")
    days, since = _window(request)
    outcome, model = request.query.get("outcome", ""), request.query.get("model", "").strip()[:128]
    filters = {"days": days, "tenant": _slug(request, "tenant"), "workload": _slug(request, "workload"),
               "model": model, "outcome": outcome if outcome in OUTCOMES else ""}  # fmt: skip
    query = ledger_pb2.RequestQuery(tenant=filters["tenant"], workload=filters["workload"], model=filters["model"],
                                    outcome=filters["outcome"], since=since, limit=100)  # fmt: skip
    found = await backend.ledger_call("ListRequests", query, session.key)
    template = "_request_rows.html" if request.headers.get("HX-Request") else "requests.html"
    return render(request, template, filters=filters, windows=WINDOWS, days=days, outcomes=OUTCOMES, found=found)


async def request_page(request: web.Request) -> web.Response:
    session, backend = session_of(request), request.app[BACKEND]
    request_id = request.match_info["request_id"]
    if not _REQUEST_ID.match(request_id):
        return refuse(request, 400, "not a request id")
    found = await backend.ledger_call("ListAttempts", ledger_pb2.AttemptQuery(request_id=request_id), session.key)
    attempts = sorted(found.attempts, key=lambda a: a.attempt_index)
    # its row: where it went and why (none yet while its outcome is on the way, or another tenant's)
    rows = await backend.ledger_call("ListRequests", ledger_pb2.RequestQuery(request_id=request_id), session.key)
    summary = next((r for r in rows.requests if r.request_id == request_id), None)
    context: dict[str, Any] = {"request_id": request_id, "attempts": attempts, "summary": summary,
               "trace_link": _trace_link(request.app[TRACE_URL], summary.trace_id if summary else "")}  # fmt: skip
    if not attempts and summary is None:
        return render(request, "request.html", status=404, total=Decimal(0), **context)
    total = sum((Decimal(a.cost_usd or "0") for a in attempts), Decimal(0))
    return render(request, "request.html", total=total, **context)


def _trace_link(template: str, trace_id: str) -> str:
    """The tracing UI's page of `trace_id` (TIERLIFT_CONSOLE_TRACE_URL), or "" for no link. The id
    must be 32 hex digits, so nothing else reaches the URL; the page's autoescape does the rest."""
    if not template or not _TRACE_ID.match(trace_id):
        return ""
    return template.replace("{trace_id}", trace_id)


async def quality(request: web.Request) -> web.Response:
    session, backend = session_of(request), request.app[BACKEND]
    days, since = _window(request)
    workload = _slug(request, "workload")
    query = ledger_pb2.QualityQuery(workload=workload, since=since)
    report = await backend.ledger_call("GetQuality", query, session.key)
    return render(request, "quality.html", days=days, windows=WINDOWS, workload=workload, report=report)


async def rollouts(request: web.Request) -> web.Response:
    """The rollouts the Assessor knows (newest first, of the workload when one is named), and one
    rollout by id or by workload (its latest). The Assessor shows them to admins only."""
    session, backend = session_of(request), request.app[BACKEND]
    rollout_id, workload = request.query.get("id", "").strip(), _slug(request, "workload")
    context: dict[str, Any] = {"rollout_id": rollout_id, "workload": workload, "report": None, "note": "",
                               "listed": []}  # fmt: skip
    if backend.assessor is None:
        context["note"] = "this console has no assessor address (TIERLIFT_ASSESSOR_ADDR): rollouts are not shown"
    elif not session.acts:
        context["note"] = "the Assessor shows rollouts to admin keys only"
    else:
        listing = assessor_pb2.RolloutListQuery(workload=workload, limit=50)
        context["listed"] = (await backend.call(backend.assessor, "ListRollouts", listing, session.key)).rollouts
        if rollout_id or workload:
            query = assessor_pb2.RolloutQuery(rollout_id=rollout_id, workload="" if rollout_id else workload)
            try:
                context["report"] = await backend.call(backend.assessor, "GetRollout", query, session.key)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                context["note"] = f"no rollout found: {exc.details()}"
    return render(request, "rollouts.html", **context, done=request.query.get("done", ""))


async def keys(request: web.Request) -> web.Response:
    return await keys_page(request)


async def keys_page(request: web.Request, created: ledger_pb2.CreatedKey | None = None) -> web.Response:
    """Keys (admin), budgets (every reader: the ledger scopes a viewer's) and the audit trail
    (finance and admin). `created`: a key just made, whose secret this one response shows."""
    session, backend = session_of(request), request.app[BACKEND]
    key_list = await backend.ledger_call("ListKeys", ledger_pb2.KeyQuery(), session.key) if session.acts else None
    budgets = await backend.ledger_call("ListBudgets", ledger_pb2.BudgetQuery(), session.key)
    audit = None
    if session.sees_money:
        audit = await backend.ledger_call("ListAudit", ledger_pb2.AuditQuery(limit=30), session.key)
    return render(request, "keys.html", keys=key_list, budgets=[_budget(b) for b in budgets.budgets],
                  audit=audit, created=created, done=request.query.get("done", ""))  # fmt: skip
