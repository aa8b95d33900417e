"""`tierlift reconcile`: the providers' admin usage and cost reports (served by wire servers of
those APIs, paged) against a real ledger (SQLite, attempts priced and inserted through the
ingest path, read through the ledger servicer's GetSpend as a finance key)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.wire.usage_reports import Billed, UsageReportServer
from tierlift import cli
from tierlift.core import identity, migrations
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.ledger import LedgerStore, make_engine, price_attempt
from tierlift.ledger._servicer import LedgerServicer
from tierlift.reconcile import DayUsage, Thresholds, compare
from tierlift.reconcile._compare import MATCHED, model_name
from tierlift.v1 import common_pb2, events_pb2, ledger_pb2, router_pb2

CATALOG = load_catalog(DEFAULT_CATALOG)
ADMIN_KEY = "admin-test-key"
MILLION = Decimal(1_000_000)
# catalog id -> how the provider names it in its reports (a dated snapshot, or the same name)
REPORTED = {"gpt-5": "gpt-5-2025-08-07", "gpt-5-mini": "gpt-5-mini", "claude-haiku-4-5": "claude-haiku-4-5-20251001"}


class ServicerLedger:
    """The ledger servicer's own GetSpend behind the stub's signature, called as a finance key."""

    def __init__(self, store: LedgerStore) -> None:
        self.servicer = LedgerServicer(store, None, None, None)  # type: ignore[arg-type]  # GetSpend reads the store

    def GetSpend(self, query: ledger_pb2.SpendQuery, timeout: float) -> ledger_pb2.SpendReport:
        async def call() -> ledger_pb2.SpendReport:
            token = identity._CURRENT.set(identity.Principal("finance-test", "finance"))
            try:
                return await self.servicer.GetSpend(query, None)
            finally:
                identity._CURRENT.reset(token)

        return asyncio.run(call())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LedgerStore]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    yield LedgerStore(engine)
    engine.dispose()


def bill(store: LedgerStore, day: date, model_id: str, tokens_in: int, cached: int, tokens_out: int) -> Billed:
    """One attempt priced and stored as the ledger's ingest does, and the provider's report of it."""
    model = CATALOG.get(model_id)
    assert model is not None
    usage = common_pb2.Usage(input_tokens=tokens_in, output_tokens=tokens_out, cache_read_input_tokens=cached)
    request_id = f"{model_id}-{day}"
    event = events_pb2.AttemptFinished(
        event_id=f"{request_id}.attempt.0", request_id=request_id, tenant="acme", workload="chat",
        attempt=router_pb2.Attempt(index=0, tier=model.tier_value, model=model_id, adapter=model.adapter,
                                   outcome=router_pb2.OUTCOME_ANSWERED, usage=usage),
    )  # fmt: skip
    event.occurred_at.FromDatetime(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23, minutes=59))
    row = price_attempt(event, CATALOG)
    store.insert_attempts([row])
    output_usd = Decimal(tokens_out) * model.price.output_per_million / MILLION
    return Billed(
        day,
        REPORTED.get(model_id, model_id),
        tokens_in,
        tokens_out,
        cached,
        1,
        row["cost_usd"] - output_usd,
        output_usd,
    )


FIRST = date(2026, 11, 1)
DAYS = [FIRST + timedelta(days=n) for n in range(5)]  # 3 pages of 2 buckets


def traffic(store: LedgerStore, models: tuple[str, ...]) -> list[Billed]:
    return [bill(store, d, m, 100_000 + n * 1_000, 20_000, 20_000) for n, d in enumerate(DAYS) for m in models]


def reconcile(tmp_path: Path, store: LedgerStore, monkeypatch: pytest.MonkeyPatch, provider: str,
              server: UsageReportServer, *extra: str) -> tuple[int, dict[str, Any]]:  # fmt: skip
    monkeypatch.setenv(f"{provider.upper()}_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setattr(cli, "_ledger", lambda _args: ServicerLedger(store))
    out = tmp_path / "reconcile.json"
    code = cli.main(["reconcile", "--provider", provider, "--from", str(DAYS[0]), "--to", str(DAYS[-1]),
                     "--provider-url", server.url + ("/v1" if provider == "openai" else ""), "--json", str(out),
                     *extra])  # fmt: skip
    return code, json.loads(out.read_text())


@pytest.mark.parametrize(
    ("provider", "models"), [("openai", ("gpt-5", "gpt-5-mini")), ("anthropic", ("claude-haiku-4-5",))]
)
def test_matching_reports_reconcile_with_no_difference_and_no_alert(
    tmp_path: Path, store: LedgerStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    provider: str, models: tuple[str, ...],
) -> None:  # fmt: skip
    billed = traffic(store, models)
    traffic(store, ("claude-opus-4-5",) if provider == "openai" else ("gpt-5",))  # the other provider's: left out
    with UsageReportServer(billed, ADMIN_KEY, page_buckets=2) as server:
        code, report = reconcile(tmp_path, store, monkeypatch, provider, server)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert report["counts"] == {"matched": 5 * len(models), "differs": 0, "missing_in_ledger": 0,
                                "missing_at_provider": 0}  # fmt: skip
    assert not report["alert"] and "ALERT" not in out.err
    assert {line["model"] for line in report["lines"]} == {m for m in models}  # dated snapshots named as catalogued
    assert abs(Decimal(report["provider_cost_usd"]) - Decimal(report["ledger_cost_usd"])) < Decimal("0.000001")
    pages = [path for path, _ in server.requests]
    assert len(pages) == 6 and len(set(pages)) == 2  # usage and costs, 3 pages each


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-5"), ("anthropic", "claude-haiku-4-5")])
def test_a_day_missing_from_the_ledger_and_a_price_difference_are_found_and_alert(
    tmp_path: Path, store: LedgerStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    provider: str, model: str,
) -> None:  # fmt: skip
    billed = traffic(store, (model,))
    lost = DAYS[2]
    with store.engine.begin() as conn:  # the ledger never heard of that day's attempt: neither it nor its rollup
        from tierlift.ledger._schema import attempts, daily_spend

        conn.execute(attempts.delete().where(attempts.c.request_id == f"{model}-{lost}"))
        conn.execute(daily_spend.delete().where(daily_spend.c.day == lost, daily_spend.c.model == model))
    overbilled = DAYS[3]  # the provider charged 10% more than the catalog's prices make it
    billed = [b if b.day != overbilled else Billed(b.day, b.model, b.input_tokens, b.output_tokens,
              b.cache_read_tokens, b.requests, b.input_usd * Decimal("1.1"), b.output_usd * Decimal("1.1"))
              for b in billed]  # fmt: skip
    with UsageReportServer(billed, ADMIN_KEY) as server:
        code, report = reconcile(tmp_path, store, monkeypatch, provider, server, "--max-diff-usd", "1")
    err = capsys.readouterr().err
    assert code == 3
    by_day = {line["day"]: line for line in report["lines"]}
    assert by_day[str(lost)]["status"] == "missing_in_ledger" and by_day[str(lost)]["ledger"] is None
    assert by_day[str(overbilled)]["status"] == "differs"
    assert by_day[str(overbilled)]["diff_tokens"] == {"input": 0, "output": 0, "cache_read": 0}
    assert Decimal(by_day[str(overbilled)]["diff_share"]) == pytest.approx(Decimal("0.0909"), abs=Decimal("0.0001"))
    assert [line["day"] for line in report["lines"] if line["alert"]] == [str(lost), str(overbilled)]
    assert sum(line["status"] == MATCHED for line in report["lines"]) == 3
    assert f"ALERT reconcile {provider}" in err and f"{lost} {model} missing_in_ledger" in err


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_wrong_admin_key_is_refused_with_the_providers_error(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    monkeypatch.setenv(f"{provider.upper()}_ADMIN_KEY", "wrong")
    monkeypatch.setattr(cli, "_ledger", lambda _args: ServicerLedger(store))
    with UsageReportServer([], ADMIN_KEY) as server:
        code = cli.main(["reconcile", "--provider", provider, "--from", "2026-11-01", "--to", "2026-11-02",
                         "--provider-url", server.url + ("/v1" if provider == "openai" else "")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("tierlift: reconcile: ") and "401" in err


def test_the_comparison_names_each_side_missing_and_the_thresholds_decide_the_alert() -> None:
    day = date(2026, 11, 1)
    theirs = [DayUsage(day, "m", 100, 10, 0, 1, Decimal("1.00")), DayUsage(day, "gone", 5, 5, 0, 1, Decimal("0.02"))]
    ours = [DayUsage(day, "m", 100, 10, 0, 1, Decimal("1.03")), DayUsage(day, "ours", 5, 5, 0, 1, Decimal("2"))]
    loose = compare("p", day, day, theirs, ours, Thresholds(Decimal("1"), Decimal("0.5")))
    assert [(line.model, line.status, line.alert) for line in loose.lines] == [
        ("gone", "missing_in_ledger", True),
        ("m", "differs", False),
        ("ours", "missing_at_provider", True),
    ]
    tight = compare("p", day, day, theirs, ours, Thresholds(Decimal("1"), Decimal("0.02")))
    assert [line.model for line in tight.alerts] == ["gone", "m", "ours"]
    assert model_name("claude-haiku-4-5-20251001", ["claude-haiku-4-5"]) == "claude-haiku-4-5"
    assert model_name("gpt-5-mini-2025-08-07", ["gpt-5"]) == "gpt-5-mini-2025-08-07"  # not another model's snapshot


def test_a_window_backwards_or_without_an_admin_key_is_refused_before_any_call(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    monkeypatch.delenv("OPENAI_ADMIN_KEY_FILE", raising=False)
    monkeypatch.delenv("TIERLIFT_SECRETS_DIR", raising=False)
    monkeypatch.setattr(cli, "_ledger", lambda _args: ServicerLedger(store))
    window = ["reconcile", "--provider", "openai", "--from", "2026-11-02", "--to"]
    assert cli.main([*window, "2026-11-01"]) == 2
    assert "--to: before --from" in capsys.readouterr().err
    assert cli.main([*window, "2026-11-03"]) == 2
    assert "OPENAI_ADMIN_KEY: set it to an admin key" in capsys.readouterr().err
