"""Where a request went and why: the router's RequestCompleted carries the plan's data class,
reasons, exclusions, rungs and trace id (router/_events.py); the ledger stores them on the request
row (ledger/_ingest.py `why`, migration 0015), answers them in ListRequests, and counts the fallback
rate and the data-class mix in SQL for GetReport (ledger/_requests.py `routing_mix`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text

from tierlift.core import migrations
from tierlift.core.bus import PoisonEvent
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.ledger import LedgerStore, make_engine, price_attempt
from tierlift.ledger._ingest import MAX_REASON, MAX_REASONS, request_row
from tierlift.ledger._requests import add_routing_mix, find_requests, routing_mix, summary
from tierlift.router._events import _completed_event
from tierlift.v1 import common_pb2, events_pb2, ledger_pb2, router_pb2

CATALOG = load_catalog(DEFAULT_CATALOG)
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PROMPT = "my card is 4111 1111 1111 1111, what is my balance?"


def _plan(request_id: str = "r1") -> router_pb2.RoutingPlan:
    plan = router_pb2.RoutingPlan(request_id=request_id, reasons=["policy p1; escalate below confidence 0.70"])
    plan.classification.data_class = common_pb2.DATA_CLASS_CONFIDENTIAL
    plan.ladder.add(tier=common_pb2.TIER_LOCAL, model="gemma-3-270m-cpu", adapter="llamacpp", reason="LOCAL tier, free")
    plan.ladder.add(tier=common_pb2.TIER_CLOSED, model="gpt-5-mini", adapter="openai", reason="CLOSED tier, 0.25/M")
    plan.excluded.add(model="claude-haiku-4-5", reason="CONFIDENTIAL data may not leave the region")
    return plan


def _completed(request_id: str = "r1") -> events_pb2.RequestCompleted:
    request = router_pb2.CompleteRequest(
        tenant="dev", workload="chat", messages=[common_pb2.Message(role="user", content=PROMPT)]
    )
    answer = router_pb2.Attempt(index=1, tier=common_pb2.TIER_CLOSED, model="gpt-5-mini", reason="answer text here")
    with TracerProvider().get_tracer("test").start_as_current_span("Complete") as span:
        event = _completed_event(request, _plan(request_id), [answer], "0.001", answer, "")
        assert event.trace_id == f"{span.get_span_context().trace_id:032x}"
    event.occurred_at.FromDatetime(NOW)
    return event


def test_the_outcome_event_says_where_the_request_went_and_why_and_never_its_text() -> None:
    event = _completed()
    assert event.data_class == common_pb2.DATA_CLASS_CONFIDENTIAL
    assert list(event.reasons) == ["policy p1; escalate below confidence 0.70"]
    assert [(x.model, x.reason) for x in event.excluded] == [
        ("claude-haiku-4-5", "CONFIDENTIAL data may not leave the region")
    ]
    assert [r.reason for r in event.ladder] == ["LOCAL tier, free", "CLOSED tier, 0.25/M"]
    assert len(event.trace_id) == 32
    assert b"4111" not in event.SerializeToString()  # no prompt text
    answer = router_pb2.Attempt(tier=common_pb2.TIER_LOCAL, model="gemma-3-270m-cpu")
    untraced = _completed_event(router_pb2.CompleteRequest(tenant="dev"), _plan(), [answer], "0", answer, "")
    assert untraced.trace_id == ""  # tracing off: no span


def test_the_request_row_keeps_the_data_class_the_reasons_and_the_trace_id() -> None:
    event = _completed()
    row = request_row(event)
    assert row["data_class"] == "CONFIDENTIAL" and row["trace_id"] == event.trace_id
    assert json.loads(row["reasons"]) == {
        "plan": ["policy p1; escalate below confidence 0.70"],
        "ladder": [["LOCAL", "gemma-3-270m-cpu", "LOCAL tier, free"], ["CLOSED", "gpt-5-mini", "CLOSED tier, 0.25/M"]],
        "excluded": [["claude-haiku-4-5", "CONFIDENTIAL data may not leave the region"]],
        "cut": 0,
    }
    old = events_pb2.RequestCompleted(event_id="e", request_id="r", tenant="dev", workload="chat")
    assert {k: request_row(old)[k] for k in ("data_class", "reasons", "trace_id")} == dict.fromkeys(
        ("data_class", "reasons", "trace_id"), ""
    )  # a router that says none of it


def test_reasons_are_bounded_and_an_impossible_data_class_is_refused_by_name() -> None:
    event = _completed()
    del event.excluded[:]
    event.excluded.add(model="m" * 500, reason="x\x00" * 500)
    for i in range(200):
        event.excluded.add(model=f"model-{i}", reason="r" * 200)
    why = json.loads(request_row(event)["reasons"])
    first = why["excluded"][0]
    assert len(first[0]) == len(first[1]) == MAX_REASON and "\x00" not in first[1]
    kept = sum(len(t) for entry in why["excluded"] for t in entry) + sum(len(t) for e in why["ladder"] for t in e[1:])
    assert kept + len(why["plan"][0]) <= MAX_REASONS
    assert why["cut"] == 201 - len(why["excluded"]) > 0
    for bad in ("not-hex", "A" * 33, "0" * 32):
        event.trace_id = bad
        assert request_row(event)["trace_id"] == ""  # a broken link is not worth the request's row
    event.data_class = 9  # type: ignore[assignment]
    with pytest.raises(PoisonEvent, match=r"^data_class: 9 is not a known value"):
        request_row(event)


def test_requests_stored_before_migration_0015_stay_valid_and_count_as_unrecorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = migrations.alembic_config(url)
    command.upgrade(config, "0014")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO requests (request_id, event_id, tenant, workload, answered, final_tier, final_model, "
            "attempt_count, escalated, total_cost_usd, occurred_at) VALUES ('old', 'old.completed', 'dev', 'chat', "
            "1, 'LOCAL', 'gemma-3-270m-cpu', 1, 0, 1000, '2026-12-07 11:00:00')"
        ))  # fmt: skip
    migrations.upgrade(url)
    [row] = find_requests(engine, ledger_pb2.RequestQuery(request_id="old"), "", None, None)
    old = summary(row)
    assert (old.data_class, list(old.reasons), list(old.ladder), old.trace_id) == ("", [], [], "")
    [group] = routing_mix(engine, "", "", None, None)
    assert group["data_class"] == "UNRECORDED" and group["requests"] == 1 and group["fell_back"] == 0
    LedgerStore(engine).insert_requests([request_row(_completed("new"))])  # a new row beside it
    new = summary(find_requests(engine, ledger_pb2.RequestQuery(request_id="new"), "", None, None)[0])
    assert new.data_class == "CONFIDENTIAL" and new.reasons == ["policy p1; escalate below confidence 0.70"]
    assert [(r.tier, r.model) for r in new.ladder] == [
        (common_pb2.TIER_LOCAL, "gemma-3-270m-cpu"),
        (common_pb2.TIER_CLOSED, "gpt-5-mini"),
    ]
    assert new.excluded[0].model == "claude-haiku-4-5" and len(new.trace_id) == 32
    engine.dispose()
    command.downgrade(config, "0014")  # and back: the columns go, the row stays
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM requests")).scalar() == 2
    engine.dispose()


def _request(n: int, tenant: str, model: str, data_class: str, answered: bool = True, age_h: int = 0) -> dict[str, Any]:
    tier = CATALOG.get(model).tier if answered else ""  # type: ignore[union-attr]
    return {"request_id": f"r{n}", "event_id": f"r{n}.completed", "tenant": tenant, "workload": "chat",
            "answered": answered, "final_tier": tier, "final_model": model if answered else "", "attempt_count": 1,
            "escalated": False, "total_cost_usd": Decimal(0), "occurred_at": NOW - timedelta(hours=age_h), "error": "",
            "data_class": data_class}  # fmt: skip


def _attempt(
    n: int, index: int, tenant: str, model: str, outcome: router_pb2.Outcome, kind: str = ""
) -> dict[str, Any]:
    m = CATALOG.get(model)
    assert m is not None
    event = events_pb2.AttemptFinished(
        event_id=f"r{n}.{kind}attempt.{index}", request_id=f"r{n}", tenant=tenant, workload="chat", kind=kind,
        attempt=router_pb2.Attempt(index=index, tier=m.tier_value, model=model, adapter=m.adapter, outcome=outcome),
    )  # fmt: skip
    event.occurred_at.FromDatetime(NOW)
    return price_attempt(event, CATALOG)


def test_the_fallback_rate_and_the_data_class_mix_are_counted_in_sql_exactly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    store = LedgerStore(engine)
    local, closed = "gemma-3-270m-cpu", "gpt-5-mini"
    fault, low, ok = router_pb2.OUTCOME_FAULT, router_pb2.OUTCOME_LOW_CONFIDENCE, router_pb2.OUTCOME_ANSWERED
    store.insert_requests([
        _request(1, "dev", local, "PUBLIC"),  # a fault, then answered: fell back
        _request(2, "dev", local, "PUBLIC"),  # escalated on low confidence: no fallback
        _request(3, "dev", closed, "CONFIDENTIAL"),  # two faults: fell back, counted once
        _request(4, "dev", closed, "INTERNAL"),  # only a shadow faulted: no fallback
        _request(5, "dev", "", "REGULATED", answered=False),  # every rung faulted: not answered
        _request(6, "acme", local, "PUBLIC"),  # another tenant's
        _request(7, "dev", local, "PUBLIC", age_h=48),  # before the window
    ])  # fmt: skip
    store.insert_attempts([
        _attempt(1, 0, "dev", closed, fault), _attempt(1, 1, "dev", local, ok),
        _attempt(2, 0, "dev", local, low), _attempt(2, 1, "dev", local, ok),
        _attempt(3, 0, "dev", local, fault), _attempt(3, 1, "dev", local, fault), _attempt(3, 2, "dev", closed, ok),
        _attempt(4, 0, "dev", closed, ok), _attempt(4, 0, "dev", local, fault, kind="shadow"),
        _attempt(5, 0, "dev", local, fault),
        _attempt(6, 0, "acme", closed, fault), _attempt(6, 1, "acme", local, ok),
        _attempt(7, 0, "dev", closed, fault), _attempt(7, 1, "dev", local, ok),
    ])  # fmt: skip
    report = ledger_pb2.Report()
    add_routing_mix(report, routing_mix(engine, "dev", "", NOW - timedelta(hours=24), None))
    assert (report.fell_back, report.fallback_rate) == (2, 0.5)
    assert dict(report.requests_by_data_class) == {"PUBLIC": 2, "CONFIDENTIAL": 1, "INTERNAL": 1, "REGULATED": 1}
    routes = [(r.tier, r.model, r.answered, r.fell_back, r.fallback_rate, dict(r.requests_by_data_class))
              for r in report.routes]  # fmt: skip
    assert routes == [
        (common_pb2.TIER_CLOSED, closed, 2, 1, 0.5, {"CONFIDENTIAL": 1, "INTERNAL": 1}),
        (common_pb2.TIER_LOCAL, local, 2, 1, 0.5, {"PUBLIC": 2}),
    ]
    everyone = ledger_pb2.Report()
    add_routing_mix(everyone, routing_mix(engine, "", "", None, None))
    assert (everyone.fell_back, everyone.requests_by_data_class["PUBLIC"]) == (4, 4)
    assert everyone.fallback_rate == 4 / 6
    engine.dispose()


def test_each_attempt_keeps_its_own_reason_and_error_bounded(tmp_path: Path) -> None:
    """The router's story of each attempt (why it moved on or kept it, a fault's error) is stored
    on the attempt's row (migration 0018), cut to 512 characters with NUL shown, and listed."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrations.upgrade(url)
    store = LedgerStore(make_engine(url))
    event = events_pb2.AttemptFinished(
        event_id="r1.attempt.0", request_id="r1", tenant="acme", workload="chat",
        attempt=router_pb2.Attempt(index=0, tier=common_pb2.TIER_LOCAL, model="gemma-3-270m-cpu",
                                   adapter="llamacpp-local", outcome=router_pb2.OUTCOME_LOW_CONFIDENCE,
                                   reason="confidence 0.238 < threshold 0.350: escalating"),
    )  # fmt: skip
    event.occurred_at.FromDatetime(NOW)
    escalated = price_attempt(event, CATALOG)
    event.event_id, event.attempt.index, event.attempt.model = "r1.attempt.1", 1, "gpt-5-mini"
    event.attempt.tier, event.attempt.adapter, event.attempt.outcome = (
        common_pb2.TIER_CLOSED,
        "openai",
        router_pb2.OUTCOME_FAULT,
    )
    event.attempt.reason, event.attempt.error = "", "UNAVAILABLE: upstream said \x00" + "x" * 2_000
    faulted = price_attempt(event, CATALOG)
    store.insert_attempts([escalated, faulted])
    rows = {r["attempt_index"]: r for r in store.attempts_for("r1")}
    assert rows[0]["reason"] == "confidence 0.238 < threshold 0.350: escalating" and rows[0]["error"] == ""
    assert rows[1]["error"].startswith("UNAVAILABLE: upstream said \ufffd") and len(rows[1]["error"]) == 512
