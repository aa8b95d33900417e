"""The console's sessions, CSRF and role checks, and every page rendered, against a fake backend
(canned Ledger and Assessor answers); tests/integration/test_console_browser.py drives it in a
real browser against the real stack."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tierlift.console import PREFIX, Backend, Sessions, build_console
from tierlift.console._auth import COOKIE, same_origin
from tierlift.console.main import TraceLinkSettings
from tierlift.core.config import ConfigError, load_settings
from tierlift.v1 import assessor_pb2, common_pb2, events_pb2, ledger_pb2, router_pb2

SECRET = "a-test-secret-of-enough-length"
ROLES = {"tl_admin_x": "admin", "tl_finance_x": "finance", "tl_viewer_x": "viewer"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class _Refused(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="refused by the fake")


class FakeBackend(Backend):
    """Canned answers; records the calls made (method, key)."""

    def __init__(self) -> None:
        super().__init__(ledger=None, assessor=object())
        self.calls: list[tuple[str, str]] = []
        self.requests: list[tuple[str, Any]] = []  # (method, request message)

    async def role_of(self, key: str) -> str:
        if key not in ROLES:
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED)
        return ROLES[key]

    async def call(self, stub: Any, method: str, request: Any, key: str) -> Any:
        self.calls.append((method, key))
        self.requests.append((method, request))
        return ANSWERS[method](request)

    async def ledger_call(self, method: str, request: Any, key: str) -> Any:
        return await self.call(None, method, request, key)


def _line(tier: common_pb2.Tier, model: str, cost: str) -> ledger_pb2.SpendLine:
    kinds = [ledger_pb2.KindSpend(kind="cache_read", tokens=100, cost_usd="0.0001"),
             ledger_pb2.KindSpend(kind="text", tokens=50, cost_usd=str(Decimal(cost) - Decimal("0.0001")))]  # fmt: skip
    return ledger_pb2.SpendLine(tenant="dev", workload="chat", tier=tier, model=model, attempts=2, cost_usd=cost,
                                kinds=kinds)  # fmt: skip


def _spend_report(query: ledger_pb2.SpendQuery) -> ledger_pb2.SpendReport:
    """Two lines and the window's kinds (their sums), as the ledger answers the query's options."""
    lines = [_line(common_pb2.TIER_LOCAL, "gemma", "0.01"), _line(common_pb2.TIER_CLOSED, "=cmd()", "0.0023")]
    kinds = [ledger_pb2.KindSpend(kind="cache_read", tokens=200, cost_usd="0.0002"),
             ledger_pb2.KindSpend(kind="text", tokens=100, cost_usd="0.0121")]  # fmt: skip
    if query.omit_line_kinds:
        for line in lines:
            del line.kinds[:]
    days = [ledger_pb2.DailySpend(day="2026-12-06", tier=common_pb2.TIER_CLOSED, attempts=5, cost_usd="0.02")]
    return ledger_pb2.SpendReport(lines=lines, total_cost_usd="0.0123", total_attempts=4, kinds=kinds,
                                  days=days if query.with_days else [])  # fmt: skip


def _rollout(status: str) -> events_pb2.RolloutState:
    return events_pb2.RolloutState(rollout_id="chat-1234", workload="chat", from_model="a", to_model="b",
                                   stages=[0, 5, 100], stage_index=1, status=status, actor="tl_admin")  # fmt: skip


ANSWERS: dict[str, Any] = {
    "GetReport": lambda q: ledger_pb2.Report(
        requests=3, answered=3, escalation_rate=0.25, total_cost_usd="0.0123", answered_by_tier={"LOCAL": 1.0},
        days=[ledger_pb2.DailySpend(day="2026-12-07", tier=common_pb2.TIER_LOCAL, attempts=3, cost_usd="0.01",
                                    input_tokens=9_000_000, output_tokens=1_000_000)],
        fell_back=1, fallback_rate=1 / 3, requests_by_data_class={"PUBLIC": 2, "REGULATED": 1},
        routes=[ledger_pb2.RouteLine(tier=common_pb2.TIER_LOCAL, model="gemma", answered=3, fell_back=1,
                                     fallback_rate=1 / 3, requests_by_data_class={"PUBLIC": 2, "REGULATED": 1})],
    ),
    "GetSpend": lambda q: _spend_report(q),
    "ListBudgets": lambda q: ledger_pb2.BudgetList(budgets=[ledger_pb2.Budget(
        tenant="dev", period="day", limit_usd="1", spent_usd="0.9", state="soft_exceeded", action="reject")]),
    "ListAttempts": lambda q: ledger_pb2.AttemptList(attempts=[ledger_pb2.LedgerAttempt(
        request_id=q.request_id, tenant="dev", workload="chat", tier=common_pb2.TIER_LOCAL, model="gemma",
        outcome="ANSWERED", cost_usd="0.0001")] if q.request_id == "req-1" else []),
    "ListRequests": lambda q: ledger_pb2.RequestList(requests=[ledger_pb2.RequestSummary(
        request_id="req-1", tenant="dev", workload=q.workload or "chat", final_tier=common_pb2.TIER_LOCAL,
        final_model="gemma", attempts=1, answered=True, total_cost_usd="0.0001", data_class="REGULATED",
        reasons=["policy p1; escalate below confidence 0.70", "<script>x</script>"],
        ladder=[router_pb2.Rung(tier=common_pb2.TIER_LOCAL, model="gemma", reason="LOCAL tier, free")],
        excluded=[router_pb2.Exclusion(model="gpt-5", reason="REGULATED data stays on the LOCAL tier")],
        trace_id=TRACE_ID)]),
    "GetQuality": lambda q: ledger_pb2.QualityReport(
        lines=[ledger_pb2.QualityLine(workload="chat", model="gemma", tier="LOCAL", requests=3, agreement=-1,
                                      suite_score=0.9)],
        alerts=[ledger_pb2.QualityAlertEntry(workload="chat", model="gemma", reason="<script>x</script>")],
    ),
    "ListKeys": lambda q: ledger_pb2.KeyList(keys=[ledger_pb2.ApiKey(key_id="k1", role="viewer", tenant="dev")]),
    "ListAudit": lambda q: ledger_pb2.AuditList(entries=[ledger_pb2.AuditEntry(actor="k0", action="key.created")]),
    "CreateKey": lambda q: ledger_pb2.CreatedKey(key=ledger_pb2.ApiKey(key_id="k2", role=q.role), secret="tl_k2_s3"),
    "RevokeKey": lambda q: ledger_pb2.ApiKey(key_id=q.key_id),
    "SetBudget": lambda q: q,
    "DeleteBudget": lambda q: q,
    "GetRollout": lambda q: assessor_pb2.RolloutReport(state=_rollout("running"), history=[_rollout("running")]),
    "ChangeRollout": lambda q: _rollout("paused"),
    "ListRollouts": lambda q: assessor_pb2.RolloutList(rollouts=[_rollout("running")]),
}  # fmt: skip


@pytest.fixture
def trace_url(request: pytest.FixtureRequest) -> str:
    """TIERLIFT_CONSOLE_TRACE_URL: "" unless a test parametrizes it (indirect)."""
    url: str = getattr(request, "param", "")
    return url


@pytest.fixture
async def console(trace_url: str) -> AsyncIterator[tuple[TestClient[Any, Any], FakeBackend]]:
    backend = FakeBackend()
    root = web.Application()
    root.add_subapp(PREFIX, build_console(backend, Sessions(SECRET, 3600), trace_url))
    client = TestClient(TestServer(root))
    await client.start_server()
    try:
        yield client, backend
    finally:
        await client.close()


def _origin(client: TestClient[Any, Any]) -> dict[str, str]:
    return {"Origin": f"http://{client.host}:{client.port}"}


async def _login(client: TestClient[Any, Any], key: str) -> str:
    """Logs in; returns the CSRF token of the session."""
    reply = await client.post(f"{PREFIX}/login", data={"key": key}, headers=_origin(client), allow_redirects=False)
    assert reply.status == 303, await reply.text()
    cookie = reply.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == PREFIX and cookie["max-age"]
    page = await (await client.get(f"{PREFIX}/")).text()
    assert key not in page  # a key is never rendered back
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_a_cookie_is_honoured_only_as_sealed_and_until_it_expires() -> None:
    sessions = Sessions(SECRET, 60)
    session, cookie = sessions.open("tl_admin_x", "admin", "admin", now=1000)
    assert sessions.find(cookie, now=1001) == session
    assert sessions.find(cookie, now=1060) is None  # expired
    assert sessions.find(cookie[:10] + ("A" if cookie[10] != "A" else "B") + cookie[11:], now=1001) is None
    assert Sessions("another-secret-long-enough", 60).find(cookie, now=1001) is None
    assert "tl_admin_x" not in repr(session)


def test_a_post_must_come_from_this_host() -> None:
    assert same_origin("console.example:8080", "https://console.example:8080", None)
    assert not same_origin("console.example:8080", "https://evil.example", "https://console.example:8080/x")
    assert same_origin("console.example", None, "https://console.example/console/keys")
    assert not same_origin("console.example", None, None)


@pytest.mark.parametrize("key", ["tl_admin_x", "tl_finance_x", "tl_viewer_x"])
async def test_every_page_renders_for_every_reader_and_money_only_for_finance_and_admin(
    console: tuple[TestClient[Any, Any], FakeBackend], key: str
) -> None:
    client, _backend = console
    await _login(client, key)
    pages = ["/", "/?days=30", "/spend?tenant=dev", "/requests", "/requests?workload=chat&outcome=failed",
             "/requests/req-1", "/quality", "/keys", "/rollouts?workload=chat"]  # fmt: skip
    for page in pages:
        reply = await client.get(f"{PREFIX}{page}")
        text = await reply.text()
        assert reply.status == 200, (page, text)
        assert reply.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert "<script>x</script>" not in text  # escaped
        assert ("0.0123" in text) == (key != "tl_viewer_x") or page not in ("/", "/spend?tenant=dev"), page
    for page in ("/?days=30", "/requests?workload=chat"):  # htmx asks for the part it swaps, not the page
        part = await (await client.get(f"{PREFIX}{page}", headers={"HX-Request": "true"})).text()
        assert "<html" not in part and "<table" in part
    csv = await client.get(f"{PREFIX}/spend.csv")
    assert csv.status == (403 if key == "tl_viewer_x" else 200)
    if key != "tl_viewer_x":
        assert "'=cmd()" in await csv.text()  # a formula is quoted as text
    rollouts = await (await client.get(f"{PREFIX}/rollouts?workload=chat")).text()
    assert ('id="pause"' in rollouts) == (key == "tl_admin_x")
    listed = await (await client.get(f"{PREFIX}/rollouts")).text()  # every rollout, each a link to its page
    assert ('href="/console/rollouts?id=chat-1234"' in listed) == (key == "tl_admin_x")
    overview = await (await client.get(f"{PREFIX}/")).text()  # self-host or API, as `tierlift advise` weighs it
    assert ('id="crossover"' in overview and "tokens a day" in overview) == (key != "tl_viewer_x")
    assert (await client.get(f"{PREFIX}/requests/nope")).status == 404
    assert (await client.get(f"{PREFIX}/static/htmx-2.0.6.min.js")).status == 200


async def test_no_session_is_sent_to_login_and_a_bad_key_is_refused(
    console: tuple[TestClient[Any, Any], FakeBackend],
) -> None:
    client, backend = console
    reply = await client.get(f"{PREFIX}/spend", allow_redirects=False)
    assert reply.status == 303 and reply.headers["Location"] == f"{PREFIX}/login"
    client.session.cookie_jar.update_cookies({COOKIE: "forged.99999999999.abc"})
    assert (await client.get(f"{PREFIX}/spend", allow_redirects=False)).status == 303
    bad = await client.post(f"{PREFIX}/login", data={"key": "tl_nope"}, headers=_origin(client))
    assert bad.status == 401 and "tl_nope" not in await bad.text()
    foreign = await client.post(
        f"{PREFIX}/login", data={"key": "tl_admin_x"}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status == 403
    assert backend.calls == []


async def test_actions_need_admin_a_csrf_token_and_this_origin(
    console: tuple[TestClient[Any, Any], FakeBackend],
) -> None:
    client, backend = console
    csrf = await _login(client, "tl_viewer_x")
    for action in ("/rollouts/chat-1234/pause", "/keys/create", "/keys/k1/revoke", "/budgets/set", "/budgets/delete"):
        reply = await client.post(f"{PREFIX}{action}", data={"csrf": csrf}, headers=_origin(client))
        assert reply.status == 403, action
    assert not [m for m, _ in backend.calls if m in ("ChangeRollout", "CreateKey", "RevokeKey", "SetBudget")]
    await client.post(f"{PREFIX}/logout", data={"csrf": csrf}, headers=_origin(client))
    csrf = await _login(client, "tl_admin_x")
    url = f"{PREFIX}/rollouts/chat-1234/pause"
    assert (await client.post(url, data={"csrf": "stale"}, headers=_origin(client))).status == 403
    assert (await client.post(url, data={"csrf": csrf}, headers={"Origin": "https://evil.example"})).status == 403
    assert (await client.post(url, data={"csrf": csrf})).status == 403  # neither Origin nor Referer
    assert "ChangeRollout" not in [m for m, _ in backend.calls]
    done = await client.post(url, data={"csrf": csrf, "reason": "test"}, headers=_origin(client), allow_redirects=False)
    assert done.status == 303 and "done=pause" in done.headers["Location"]
    created = await client.post(f"{PREFIX}/keys/create", data={"csrf": csrf, "role": "viewer", "tenant": "dev"},
                                headers=_origin(client))  # fmt: skip
    assert created.status == 200 and "tl_k2_s3" in await created.text()  # shown once, on this response
    assert created.headers["Cache-Control"] == "no-store"
    assert ("ChangeRollout", "tl_admin_x") in backend.calls  # the admin's own key: audited as the CLI's


async def test_a_revoked_key_ends_the_session(
    console: tuple[TestClient[Any, Any], FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _backend = console
    await _login(client, "tl_admin_x")

    def revoked(_query: Any) -> Any:
        raise _Refused(grpc.StatusCode.UNAUTHENTICATED)

    monkeypatch.setitem(ANSWERS, "GetQuality", revoked)
    reply = await client.get(f"{PREFIX}/quality", allow_redirects=False)
    assert reply.status == 303 and reply.headers["Location"] == f"{PREFIX}/login"
    assert (await client.get(f"{PREFIX}/", allow_redirects=False)).status == 303


async def test_the_overview_shows_the_fallback_rate_and_the_data_class_mix(
    console: tuple[TestClient[Any, Any], FakeBackend],
) -> None:
    client, _backend = console
    await _login(client, "tl_viewer_x")
    page = await (await client.get(f"{PREFIX}/")).text()
    assert re.search(r'id="fallback">33\.3%<', page)
    routes = page.split('id="routes"')[1].split("</table>")[0]
    assert "<td>gemma</td><td>3</td><td>1</td><td>33.3%</td><td>PUBLIC 2 · REGULATED 1</td>" in routes
    classes = page.split('id="data-classes"')[1].split("</table>")[0]
    assert "<td>PUBLIC</td><td>2</td>" in classes and "<td>REGULATED</td><td>1</td>" in classes


@pytest.mark.parametrize("key", ["tl_finance_x", "tl_viewer_x"])
async def test_the_spend_page_shows_tokens_and_money_by_kind(
    console: tuple[TestClient[Any, Any], FakeBackend], key: str
) -> None:
    client, _backend = console
    await _login(client, key)
    page = await (await client.get(f"{PREFIX}/spend")).text()
    kinds = page.split('id="kinds"')[1].split("</table>")[0]
    assert "<td>cache_read</td><td>200</td>" in kinds and "<td>text</td><td>100</td>" in kinds  # over both lines
    assert ("<td>0.0002</td>" in kinds) == (key == "tl_finance_x")  # money for finance, tokens for all
    assert ("<td>0.0121</td>" in kinds) == (key == "tl_finance_x")


async def test_the_spend_page_and_overview_ask_the_ledger_only_for_what_they_show(
    console: tuple[TestClient[Any, Any], FakeBackend],
) -> None:
    client, backend = console
    await _login(client, "tl_finance_x")
    backend.requests.clear()
    page = await (await client.get(f"{PREFIX}/spend?days=30")).text()
    # one GetSpend brings the lines and the chart's days; no GetReport (it counts the window's requests)
    asked = [(method, request) for method, request in backend.requests if method != "ListBudgets"]
    assert [(m, r.with_days, r.by_model, r.omit_line_kinds) for m, r in asked] == [("GetSpend", True, False, True)]
    chart = json.loads(page.split('id="spend-chart">')[1].split("</script>")[0])
    assert chart["labels"] == ["2026-12-06"] and chart["datasets"][0]["data"] == [0.02]
    backend.requests.clear()
    await client.get(f"{PREFIX}/?days=90")
    spend = [r for m, r in backend.requests if m == "GetSpend"]
    assert [(r.by_model, r.with_days) for r in spend] == [(True, False)]  # the mix is per tier and model


@pytest.mark.parametrize("trace_url", ["", "https://jaeger.example/trace/{trace_id}?a=1&b=2"], indirect=True)
async def test_a_requests_page_shows_where_it_went_why_and_its_trace(
    console: tuple[TestClient[Any, Any], FakeBackend], trace_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _backend = console
    await _login(client, "tl_viewer_x")
    page = await (await client.get(f"{PREFIX}/requests/req-1")).text()
    assert '<td id="data-class">REGULATED</td>' in page
    assert "<li>policy p1; escalate below confidence 0.70</li>" in page
    assert "<li>&lt;script&gt;x&lt;/script&gt;</li>" in page  # a reason is text, escaped
    assert "<td>gpt-5</td><td>REGULATED data stays on the LOCAL tier</td>" in page
    assert "<td>gemma</td><td>LOCAL tier, free</td>" in page
    link = f'href="https://jaeger.example/trace/{TRACE_ID}?a=1&amp;b=2"'
    assert (link in page) == bool(trace_url) and f"<code>{TRACE_ID}</code>" in page
    # a trace id that is not 32 hex digits never reaches the URL
    hostile = ledger_pb2.RequestSummary(request_id="req-1", tenant="dev", trace_id='"><script>x</script>')
    monkeypatch.setitem(ANSWERS, "ListRequests", lambda q: ledger_pb2.RequestList(requests=[hostile]))
    page = await (await client.get(f"{PREFIX}/requests/req-1")).text()
    assert "jaeger.example" not in page and "<script>x" not in page and "not recorded" in page


def test_the_trace_url_must_be_a_web_page_with_the_trace_id_in_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("javascript:alert(1)//{trace_id}", "https://jaeger.example/trace/", "https://j/{trace_id}/{trace_id}"):
        monkeypatch.setenv("TIERLIFT_CONSOLE_TRACE_URL", bad)
        with pytest.raises(ConfigError, match="TIERLIFT_CONSOLE_TRACE_URL"):
            load_settings(TraceLinkSettings)
    monkeypatch.setenv("TIERLIFT_CONSOLE_TRACE_URL", "http://localhost:16686/trace/{trace_id}")
    assert load_settings(TraceLinkSettings).console_trace_url == "http://localhost:16686/trace/{trace_id}"
