"""The ledger on SQLite and on a real PostgreSQL: the same events give the same totals, budgets
change state and reach a router's BudgetBook through JetStream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.test_bus_and_ledger import attempt_event
from tests.postgres import postgres_server
from tierlift.core import bus as bus_module
from tierlift.core import migrations
from tierlift.core.bus import EventBus, PoisonEvent
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.ledger import BudgetWatcher, LedgerStore, attempt_ingest, make_engine, price_attempt, request_ingest
from tierlift.ledger._ingest import request_row, settled_ingest, settled_row, usage_report_row
from tierlift.ledger._kinds import kind_spend
from tierlift.ledger._servicer import budget_row, build_report
from tierlift.ledger._store import total
from tierlift.router._budgets import BudgetBook
from tierlift.v1 import common_pb2, events_pb2, ledger_pb2

CATALOG = load_catalog(DEFAULT_CATALOG)
MODELS = [("gemma-3-270m-cpu", common_pb2.TIER_LOCAL), ("gpt-5-mini", common_pb2.TIER_CLOSED),
          ("claude-opus-4-5", common_pb2.TIER_FRONTIER)]  # fmt: skip


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrations.upgrade(url)
    engine = make_engine(url)
    store = LedgerStore(engine)
    yield store
    if request.param == "postgresql":  # one server for the module: empty the tables for the next test
        from tierlift.ledger._schema import metadata

        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    engine.dispose()


def events(n: int) -> list[events_pb2.AttemptFinished]:
    out = []
    for i in range(n):
        model, tier = MODELS[i % len(MODELS)]
        e = attempt_event(f"r{i}.attempt.0", model=model, tokens=(100 + i, 7 * (i % 13)))
        e.attempt.tier = tier
        out.append(e)
    return out


def expected_total(evts: list[events_pb2.AttemptFinished]) -> Decimal:
    total = Decimal(0)
    for e in evts:
        model = CATALOG.get(e.attempt.model)
        assert model is not None
        total += model.cost(e.attempt.usage.input_tokens, e.attempt.usage.output_tokens)
    return total


async def ingest_all(bus: EventBus, store: LedgerStore, evts: list[events_pb2.AttemptFinished]) -> None:
    for e in evts:
        await bus.publish(bus_module.SUBJECT_ATTEMPT, e, e.event_id)
    stop = asyncio.Event()
    ingest = attempt_ingest(bus, store, CATALOG)
    task = asyncio.create_task(bus.consume(bus_module.SUBJECT_ATTEMPT, "ledger-attempts", ingest, stop))
    for _ in range(200):
        if sum(x["attempts"] for x in store.spend("", "", None, None)) >= len(evts):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task


async def test_same_events_give_the_same_exact_totals(bus: EventBus, store: LedgerStore) -> None:
    evts = events(300)
    await ingest_all(bus, store, evts)
    lines = store.spend("acme", "", None, None)
    assert sum(line["attempts"] for line in lines) == 300
    assert sum((line["cost_usd"] for line in lines), Decimal(0)) == expected_total(evts)
    # the daily rollups agree with the attempts, to the picodollar
    days = store.daily("acme", "", None, None)
    assert sum((d["cost_usd"] for d in days), Decimal(0)) == expected_total(evts)
    assert {d["tier"] for d in days} == {"LOCAL", "CLOSED", "FRONTIER"}


async def test_replayed_batch_does_not_grow_rollups(store: LedgerStore) -> None:
    rows = [price_attempt(e, CATALOG) for e in events(10)]
    store.insert_attempts(rows)
    touched = store.insert_attempts(rows)  # the same batch again, as after a crash before the ack
    assert touched == set()
    assert sum(d["attempts"] for d in store.daily("acme", "", None, None)) == 10


async def test_an_event_twice_in_one_batch_is_counted_once(store: LedgerStore) -> None:
    """A producer that republished after the stream's duplicate window (or two redeliveries) can
    put one event id twice into a fetched batch: one row, and the rollups grow once."""
    rows = [price_attempt(e, CATALOG) for e in events(3)]
    store.insert_attempts([*rows, rows[0], rows[1]])
    days = store.daily("acme", "", None, None)
    assert sum(d["attempts"] for d in days) == 3
    assert sum((d["cost_usd"] for d in days), Decimal(0)) == sum((r["cost_usd"] for r in rows), Decimal(0))


def test_an_attempt_with_numbers_that_are_not_finite_is_stored_not_a_stuck_batch(store: LedgerStore) -> None:
    """A broken producer's NaN or infinite latency or confidence failed the whole batch on SQLite
    (NaN binds as NULL into a NOT NULL column) at every redelivery; on PostgreSQL the batch's JSON
    would refuse it. Such a number is stored as 0, and the attempt's money as ever."""
    evts = events(4)
    evts[0].attempt.latency_ms = float("nan")
    evts[1].attempt.confidence = float("inf")
    evts[2].attempt.latency_ms = float("-inf")
    rows = [price_attempt(e, CATALOG) for e in evts]
    store.insert_attempts(rows)
    stored = {a["event_id"]: a for e in evts for a in store.attempts_for(e.request_id)}
    assert (stored[evts[0].event_id]["latency_ms"], stored[evts[1].event_id]["confidence"]) == (0.0, 0.0)
    assert stored[evts[2].event_id]["latency_ms"] == 0.0
    days = store.daily("acme", "", None, None)
    assert sum((d["cost_usd"] for d in days), Decimal(0)) == expected_total(evts)


def test_an_alert_whose_numbers_are_not_finite_is_refused_by_name_not_a_stuck_batch(store: LedgerStore) -> None:
    """An alert's observed and baseline are the alert itself (no money rides on them): one that is
    NaN or infinite is refused naming the field (the ledger dead-letters it), where it failed its
    whole batch on SQLite at every redelivery. A finite one is stored."""
    from sqlalchemy import select

    from tierlift.core.bus import PoisonEvent
    from tierlift.ledger._quality import QualityStore, alert_row, fitting
    from tierlift.ledger._schema import quality_alerts

    to_row = fitting(quality_alerts, alert_row)
    for field, value in (("baseline", float("nan")), ("observed", float("inf")), ("baseline", float("-inf"))):
        alert = events_pb2.QualityAlert(event_id="q-bad", workload="faq", model="m", observed=0.5, baseline=0.9)
        setattr(alert, field, value)
        with pytest.raises(PoisonEvent, match=f"^{field}: .* is not a finite number"):
            to_row(alert.SerializeToString())
    finite = events_pb2.QualityAlert(event_id="q-ok", workload="faq", model="m", observed=0.5, baseline=0.9)
    QualityStore(store.engine).insert(quality_alerts, [to_row(finite.SerializeToString())])
    with store.engine.connect() as conn:
        assert conn.execute(select(quality_alerts.c.event_id, quality_alerts.c.baseline)).all() == [("q-ok", 0.9)]


async def test_an_event_whose_strings_do_not_fit_is_dead_lettered_and_the_batch_stored(
    bus: EventBus, store: LedgerStore
) -> None:
    """A string longer than its column, or holding NUL, failed the whole batch on PostgreSQL at
    every redelivery (a broken producer could stop the ledger); such an event is dead-lettered
    with the field named, and the rest of its batch stored. Alike on SQLite."""
    good, long_tenant, nul_workload = events(3)
    long_tenant.tenant = "t" * 65
    nul_workload.workload = "faq\x00"
    for e in (good, long_tenant, nul_workload):
        await bus.publish(bus_module.SUBJECT_ATTEMPT, e, e.event_id)
    ingest = attempt_ingest(bus, store, CATALOG)
    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume(bus_module.SUBJECT_ATTEMPT, "ledger-attempts", ingest, stop))
    for _ in range(200):
        if ingest.dead_lettered == 2 and store.spend("acme", "", None, None):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert sum(line["attempts"] for line in store.spend("", "", None, None)) == 1
    dead = await bus.js.pull_subscribe("tierlift.deadletter.>", durable="dl-fit", stream=bus_module.STREAM)
    reasons = sorted(m.headers["Tierlift-Reason"] for m in await dead.fetch(2, timeout=5))
    assert reasons == ["tenant: 65 characters, over the 64 its column holds", "workload: contains a NUL character"]
    completed = settled_event("r7", good).completed
    completed.error = "x" * 5000  # the story is cut to its column; the ids are not
    assert len(request_row(completed)["error"]) == 1024
    completed.request_id = "r" * 65
    with pytest.raises(PoisonEvent, match=r"^request_id: 65 characters, over the 64"):
        request_row(completed)


def test_a_story_holding_nul_is_stored_not_its_row_lost(store: LedgerStore) -> None:
    """The free text a row carries (a provider's error in an unanswered request, an audit entry's
    target and detail, a comment, an alert's reason) comes from outside: one NUL in it dead-lettered
    the row (PostgreSQL's text cannot hold NUL), and a request's or an audit entry's record was
    lost over its story. It is stored with U+FFFD for each NUL; ids stay strict (above)."""
    from sqlalchemy import select

    from tierlift.ledger._keys import KeyStore, audit_row
    from tierlift.ledger._quality import QualityStore, alert_row, feedback_row
    from tierlift.ledger._schema import audit, feedback, quality_alerts, requests

    failed = settled_event("r-nul", events(1)[0]).completed
    failed.answered, failed.final_model, failed.final_tier = False, "", 0
    failed.error = "attempt 0 openai/gpt: INVALID_ARGUMENT: upstream said \x00\x00"
    store.insert_requests([request_row(failed)])
    audited = events_pb2.AuditEvent(event_id="a-nul", actor="k1", action="policy.changed", target="p\x00",
                                    detail="line 3: \x00")  # fmt: skip
    audited.occurred_at.GetCurrentTime()
    KeyStore(store.engine).add_audit_events([audit_row(audited.SerializeToString())])
    rated = events_pb2.FeedbackGiven(event_id="f-nul", request_id="r-nul", tenant="acme", rating=1, comment="ok\x00")
    alerted = events_pb2.QualityAlert(event_id="q-nul", workload="faq", model="m", reason="drift \x00")
    QualityStore(store.engine).insert(feedback, [feedback_row(rated.SerializeToString())])
    QualityStore(store.engine).insert(quality_alerts, [alert_row(alerted.SerializeToString())])
    with store.engine.connect() as conn:
        stored = [
            conn.execute(select(requests.c.error)).scalar_one(),
            *conn.execute(select(audit.c.target, audit.c.detail)).one(),
            conn.execute(select(feedback.c.comment)).scalar_one(),
            conn.execute(select(quality_alerts.c.reason)).scalar_one(),
        ]
    assert stored == [
        "attempt 0 openai/gpt: INVALID_ARGUMENT: upstream said \ufffd\ufffd",
        "p\ufffd",
        "line 3: \ufffd",
        "ok\ufffd",
        "drift \ufffd",
    ]


def test_two_ledgers_writing_at_once_do_not_deadlock(store: LedgerStore) -> None:
    """Ledger replicas are competing consumers of one durable consumer (values-prod.yaml runs
    two), so their transactions add to the same daily rollups at once. Batches that listed the
    same rollup rows in opposite orders deadlocked on PostgreSQL (a failed batch waits out its ack
    timeout before it is retried): 13-18 of these 200 batches did before the rows were sorted."""
    template = [price_attempt(e, CATALOG) for e in events(40)]

    def write(replica: int) -> list[str]:
        failures = []
        for i in range(100):
            rows = [dict(r, event_id=f"{replica}-{i}-{j}", tenant=f"t{j}") for j, r in enumerate(template)]
            try:
                store.insert_attempts(rows[::-1] if replica else rows)
            except Exception as exc:  # a deadlock is an OperationalError; any failure counts
                failures.append(repr(exc)[:200])
        return failures

    with ThreadPoolExecutor(2) as pool:
        failures = [f for replica in pool.map(write, range(2)) for f in replica]
    assert failures == []
    days = store.daily("", "", None, None)
    assert sum(d["attempts"] for d in days) == 200 * 40
    assert sum((d["cost_usd"] for d in days), Decimal(0)) == 200 * sum((r["cost_usd"] for r in template), Decimal(0))


def test_a_usage_report_replaces_an_estimate_once_with_ledgers_writing_at_once(store: LedgerStore) -> None:
    """Streams are never free: an attempt billed from counted tokens (`usage_estimated`) is
    replaced by its provider's usage once, however many ledger replicas apply the report at
    once; a report that comes before its attempt is the attempt."""
    estimates = [attempt_event(f"r{i}.attempt.0", tokens=(40, 10)) for i in range(8)]
    for e in estimates:
        e.attempt.usage_estimated = True
    store.insert_attempts([price_attempt(e, CATALOG) for e in estimates[:4]])  # the last 4: reported first
    reports = []
    for e in estimates:
        report = events_pb2.AttemptUsage(event_id=f"{e.event_id}.usage", attempt=e)
        report.attempt.attempt.usage.CopyFrom(common_pb2.Usage(input_tokens=1000, output_tokens=500))
        report.attempt.attempt.usage_estimated = False
        reports.append(usage_report_row(report.SerializeToString(), CATALOG))

    def apply(replica: int) -> None:
        for row in reports[::-1] if replica % 2 else reports:
            store.correct_attempts([row])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(apply, range(4)))
    store.insert_attempts([price_attempt(e, CATALOG) for e in estimates])  # the estimates, late: stored already
    [line] = store.spend("acme", "", None, None)
    [day] = store.daily("acme", "", None, None)
    assert line["attempts"] == day["attempts"] == 8 and line["estimated_attempts"] == 0
    assert line["cost_usd"] == day["cost_usd"] == 8 * Decimal("0.00125")  # 1,000 in at 0.25/M, 500 out at 2.00/M
    assert (day["input_tokens"], day["output_tokens"]) == (8 * 1000, 8 * 500)


def settled_event(request_id: str, attempt: events_pb2.AttemptFinished) -> events_pb2.RequestSettled:
    completed = events_pb2.RequestCompleted(
        event_id=f"{request_id}.completed", request_id=request_id, tenant="acme", workload="faq", answered=True,
        final_tier=attempt.attempt.tier, final_model=attempt.attempt.model, attempt_count=1,
        total_cost_usd=str(expected_total([attempt])),
    )  # fmt: skip
    completed.occurred_at.GetCurrentTime()
    return events_pb2.RequestSettled(completed=completed, attempts=[attempt])


async def test_a_settled_request_stores_its_attempt_and_outcome_once(bus: EventBus, store: LedgerStore) -> None:
    """Routers publish an answered request and its answering attempt as one event; the ledger
    stores both rows in one transaction, priced as if the attempt had come alone, so an attempt
    that also arrived alone (a router of the release before, a retried request) counts once."""
    evts = events(6)
    for e in evts[:4]:
        settled = settled_event(e.request_id, e)
        await bus.publish(bus_module.SUBJECT_SETTLED, settled, f"{e.request_id}.settled")
    alone = evts[0]
    store.insert_attempts([price_attempt(alone, CATALOG)])  # the same attempt, stored from its own event
    broken = settled_event("r9", evts[5])  # an attempt of another request inside: refused whole
    await bus.publish(bus_module.SUBJECT_SETTLED, broken, "r9.settled")
    ingest = settled_ingest(bus, store, CATALOG)
    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume(bus_module.SUBJECT_SETTLED, "ledger-attempts-settled", ingest, stop))
    for _ in range(200):
        stored = sum(o["requests"] for o in store.request_outcomes("acme", "", None, None))
        if stored == 4 and ingest.dead_lettered == 1:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert ingest.dead_lettered == 1
    assert sum(o["requests"] for o in store.request_outcomes("acme", "", None, None)) == 4
    days = store.daily("acme", "", None, None)
    assert sum(d["attempts"] for d in days) == 4
    assert sum((d["cost_usd"] for d in days), Decimal(0)) == expected_total(evts[:4])
    with pytest.raises(PoisonEvent, match=r"^attempts\[0\]: "):
        settled_row(broken.SerializeToString(), CATALOG)
    with pytest.raises(PoisonEvent, match=r"^attempts: "):
        settled_row(events_pb2.RequestSettled(completed=broken.completed).SerializeToString(), CATALOG)


def test_price_change_under_the_same_catalog_version_is_refused(store: LedgerStore) -> None:
    from tierlift.core.entry import StartupError

    store.record_prices(CATALOG)
    store.record_prices(CATALOG)  # same prices: fine
    changed = CATALOG.model_copy(
        update={"models": tuple(m.model_copy(update={"price": CATALOG.models[3].price}) for m in CATALOG.models[:1])}
    )
    with pytest.raises(StartupError, match="give the changed catalog a new `version`"):
        store.record_prices(changed)


async def test_budget_states_reach_the_router_and_close_paid_tiers(bus: EventBus, store: LedgerStore) -> None:
    book = BudgetBook()
    await bus.watch_latest(f"{bus_module.SUBJECT_BUDGET}.>", book.on_message)
    watcher = BudgetWatcher(bus, store)
    store.set_budget(
        budget_row(ledger_pb2.Budget(tenant="acme", period="month", limit_usd="0.01", action="local_only"))
    )
    await watcher.check()
    rows = [price_attempt(e, CATALOG) for e in events(30)]
    touched = store.insert_attempts(rows)  # 30 attempts, ~0.02 USD: over the limit
    await watcher.check(touched)
    for _ in range(100):
        if book.exhausted("acme", "faq"):
            break
        await asyncio.sleep(0.05)
    [state] = book.exhausted("acme", "faq")
    assert (state.state, state.action, state.limit_usd) == ("hard_exceeded", "local_only", "0.010000000000")
    assert Decimal(state.spent_usd) == store.spent_since("acme", "", datetime.now(UTC).date().replace(day=1))
    assert book.exhausted("other-tenant", "faq") == []


async def test_a_stored_budget_with_a_bad_tenant_is_set_aside_and_the_rest_still_publish(
    bus: EventBus, store: LedgerStore
) -> None:
    # written by an earlier version whose slug check let a trailing newline through
    bad = budget_row(ledger_pb2.Budget(tenant="evil", period="day", limit_usd="1", action="reject"))
    store.set_budget({**bad, "tenant": "evil\n"})
    store.set_budget(budget_row(ledger_pb2.Budget(tenant="acme", period="day", limit_usd="1", action="reject")))
    dead = await bus.js.subscribe(f"{bus_module.DEAD_LETTER_PREFIX}budget")
    book = BudgetBook()
    await bus.watch_latest(f"{bus_module.SUBJECT_BUDGET}.>", book.on_message)
    watcher = BudgetWatcher(bus, store)
    await watcher.check()  # the start-up check: raised before, so the ledger could not start
    await watcher.check()  # set aside once, not on every check
    msg = await dead.next_msg(timeout=5)
    assert msg.headers is not None and msg.headers["Tierlift-Reason"] == "tenant or workload is not a slug"
    assert '"tenant": "evil\\n"' in msg.data.decode()
    with pytest.raises(TimeoutError):
        await dead.next_msg(timeout=0.5)
    store.set_budget(budget_row(ledger_pb2.Budget(tenant="acme", period="day", limit_usd="0.000001", action="reject")))
    store.insert_attempts([price_attempt(e, CATALOG) for e in events(3)])
    await watcher.check()
    for _ in range(100):
        if book.exhausted("acme", "faq"):
            break
        await asyncio.sleep(0.05)
    assert [s.state for s in book.exhausted("acme", "faq")] == ["hard_exceeded"]


def test_budgets_of_any_realistic_size_are_exact(store: LedgerStore) -> None:
    for limit in ("10000000", "987654321098.765432109876", "0.000000000001"):
        store.set_budget(budget_row(ledger_pb2.Budget(tenant="big", period="month", limit_usd=limit, action="reject")))
        [row] = store.budgets("big")
        assert row["limit_usd"] == Decimal(limit)


def test_budgets_stored_before_the_exact_type_keep_their_value(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(migrations.alembic_config(url), "0003")
    engine = make_engine(url)
    with engine.begin() as conn:  # 1.5 USD as the old schema kept it: picodollars
        conn.execute(text("INSERT INTO budgets VALUES ('acme', '', 'day', 1500000000000, 0.8, 'reject', '2026-01-01')"))
    migrations.upgrade(url)
    [row] = LedgerStore(engine).budgets("acme")
    engine.dispose()
    assert row["limit_usd"] == Decimal("1.5")


@pytest.mark.parametrize(
    ("limit", "problem"),
    [("1e30", "over the largest amount"), ("1e999999", "over the largest amount"), ("1e-20", "decimal places"),
     ("0", "positive"), ("NaN", "finite"), ("lots", "finite decimal")],
)  # fmt: skip
def test_an_impossible_budget_is_refused_by_name(limit: str, problem: str) -> None:
    with pytest.raises(ValueError, match=rf"^limit_usd: .*{problem}"):
        budget_row(ledger_pb2.Budget(tenant="acme", period="day", limit_usd=limit, action="reject"))


def test_sums_past_the_64_bit_picodollar_range_stay_exact(store: LedgerStore) -> None:
    # 200 attempts of 2e9 output tokens on claude-opus-4-5 (25 USD per 1M): 50,000 USD each, 10M in all,
    # past the 9.2M USD that a sum of 64-bit picodollars can hold; spread over workloads so that each
    # day's rollup row stays inside its own range
    rows = []
    for i in range(200):
        e = attempt_event(f"big{i}.attempt.0", model="claude-opus-4-5", tokens=(0, 2_000_000_000))
        e.workload = f"w{i % 8}"
        rows.append(price_attempt(e, CATALOG))
    store.insert_attempts(rows)
    assert total(store.spend("acme", "", None, None)) == Decimal(10_000_000)
    assert store.spent_since("acme", "", datetime.now(UTC).date().replace(day=1)) == Decimal(10_000_000)
    assert sum((d["cost_usd"] for d in store.daily("acme", "", None, None)), Decimal(0)) == Decimal(10_000_000)


def test_each_token_kinds_tokens_and_cost_are_summed_exactly_on_both_databases(store: LedgerStore) -> None:
    """claude-opus-4-5 (USD per 1M: input 5, output 25, cache read 0.50, 5-minute write 6.25, 1-hour
    write 10): 1,000 text in, 3,000 read, 600 + 400 written, 400 text out, 300 reasoning."""
    rows = []
    for i in range(3):
        e = attempt_event(f"k{i}.attempt.0", model="claude-opus-4-5")
        e.attempt.usage.CopyFrom(common_pb2.Usage(
            input_tokens=5_000, output_tokens=700, cache_read_input_tokens=3_000, cache_write_input_tokens=1_000,
            cache_write_1h_input_tokens=400, reasoning_output_tokens=300))  # fmt: skip
        rows.append(price_attempt(e, CATALOG))
    store.insert_attempts(rows)
    [line] = store.spend("acme", "", None, None)
    kinds = {k.kind: (k.tokens, k.cost_usd) for k in kind_spend(line)}
    assert kinds == {
        "cache_read": (9_000, Decimal("0.0045")), "cache_write": (3_000, Decimal("0.02325")),
        "image_input": (0, Decimal(0)), "audio_input": (0, Decimal(0)), "reasoning": (900, Decimal("0.0225")),
        "text": (4_200, Decimal("0.045")),  # 3 x (1,000 in x 5 + 400 out x 25) / 1M
    }  # fmt: skip
    assert line["cost_usd"] == Decimal("0.09525") == sum(cost for _, cost in kinds.values())
    [day] = store.daily("acme", "", None, None)  # the rollup keeps the same sums
    assert {k.kind: (k.tokens, k.cost_usd) for k in kind_spend(day)} == kinds
    report = build_report(store.daily("acme", "", None, None), [])
    assert [(k.kind, Decimal(k.cost_usd)) for k in report.days[0].kinds] == [(n, c) for n, (_, c) in kinds.items()]


def test_an_attempt_too_large_for_any_model_is_poison_not_a_stuck_batch() -> None:
    e = attempt_event("huge.attempt.0", model="claude-opus-4-5", tokens=(4_000_000_000, 4_000_000_000))
    with pytest.raises(PoisonEvent, match=r"^attempt.usage.input_tokens: "):
        price_attempt(e, CATALOG)


def test_attempts_whose_request_never_reported_get_a_row_that_says_so(store: LedgerStore) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from tierlift.ledger._schema import requests
    from tierlift.ledger._store import NO_OUTCOME

    store.insert_attempts([price_attempt(e, CATALOG) for e in events(3)])  # requests r0, r1, r2
    assert store.reconcile(datetime.now(UTC) - timedelta(minutes=10)) == 0  # too recent to judge
    assert store.reconcile(datetime.now(UTC) + timedelta(seconds=1)) == 3
    assert store.reconcile(datetime.now(UTC) + timedelta(seconds=1)) == 0  # once
    with store.engine.connect() as conn:
        rows = {r.request_id: r for r in conn.execute(select(requests)).all()}
    assert {r.error for r in rows.values()} == {NO_OUTCOME} and not any(r.answered for r in rows.values())
    # the router's own report, arriving late, replaces the placeholder
    late = events_pb2.RequestCompleted(
        event_id="r0.completed",
        request_id="r0",
        tenant="acme",
        workload="faq",
        answered=False,
        attempt_count=1,
        total_cost_usd="0",
        error="the caller gave up",
    )
    late.occurred_at.GetCurrentTime()
    store.insert_requests([request_row(late)])
    with store.engine.connect() as conn:
        row = conn.execute(select(requests).where(requests.c.request_id == "r0")).one()
    assert (row.event_id, row.error) == ("r0.completed", "the caller gave up")


def test_a_trailing_newline_is_not_a_slug() -> None:
    for tenant in ("evil\n", "evil\r\n", " acme", "ACME", "a" * 64):
        with pytest.raises(ValueError, match=r"^tenant: "):
            budget_row(ledger_pb2.Budget(tenant=tenant, period="day", limit_usd="1", action="reject"))
    with pytest.raises(ValueError) as err:
        budget_row(ledger_pb2.Budget(tenant="x" * 10_000, period="day", limit_usd="1", action="reject"))
    assert len(str(err.value)) < 200 and "10,000 characters" in str(err.value)


def test_budget_fields_are_validated_by_name() -> None:
    with pytest.raises(ValueError, match=r"^period: "):
        budget_row(ledger_pb2.Budget(tenant="acme", period="week", limit_usd="1", action="reject"))
    with pytest.raises(ValueError, match=r"^limit_usd: "):
        budget_row(ledger_pb2.Budget(tenant="acme", period="day", limit_usd="lots", action="reject"))
    with pytest.raises(ValueError, match=r"^action: "):
        budget_row(ledger_pb2.Budget(tenant="acme", period="day", limit_usd="1", action="shrug"))


async def test_report_counts_requests_escalations_and_blended_cost(bus: EventBus, store: LedgerStore) -> None:
    completed = []
    outcomes = [
        (common_pb2.TIER_LOCAL, False),
        (common_pb2.TIER_LOCAL, False),
        (common_pb2.TIER_CLOSED, True),
        (common_pb2.TIER_UNSPECIFIED, False),  # not answered
    ]
    for i, (tier, escalated) in enumerate(outcomes):
        e = events_pb2.RequestCompleted(
            event_id=f"q{i}.completed", request_id=f"q{i}", tenant="acme", workload="faq",
            answered=tier != common_pb2.TIER_UNSPECIFIED, final_tier=tier, escalated=escalated,
            total_cost_usd="0.001", attempt_count=2 if escalated else 1,
        )  # fmt: skip
        e.occurred_at.GetCurrentTime()
        completed.append(e)
        await bus.publish(bus_module.SUBJECT_COMPLETED, e, e.event_id)
    stop = asyncio.Event()
    ingest = request_ingest(bus, store)
    task = asyncio.create_task(bus.consume(bus_module.SUBJECT_COMPLETED, "ledger-attempts-requests", ingest, stop))
    for _ in range(100):
        if sum(o["requests"] for o in store.request_outcomes("acme", "", None, None)) == 4:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    store.insert_attempts([price_attempt(e, CATALOG) for e in events(3)])
    report = build_report(store.daily("acme", "", None, None), store.request_outcomes("acme", "", None, None))
    assert (report.requests, report.answered, report.escalated) == (4, 3, 1)
    assert report.escalation_rate == 0.25
    assert report.answered_by_tier == {"LOCAL": pytest.approx(2 / 3), "CLOSED": pytest.approx(1 / 3)}
    per_1k = (expected_total(events(3)) / 4 * 1000).quantize(Decimal("1e-12"))
    assert Decimal(report.cost_per_1k_requests_usd) == per_1k


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_regenerations_are_marked_alike_whatever_the_arrival_order_and_batching(store: LedgerStore, seed: int) -> None:
    """A request is regenerated when its prompt (same tenant, workload) came again within the
    window after it; events arrive in any order, in batches of any size, some twice."""
    import random
    from datetime import timedelta

    from sqlalchemy import select

    from tierlift.ledger._schema import requests

    rng, window = random.Random(seed), timedelta(seconds=300)
    store.regeneration_window_s = window.total_seconds()
    start = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    asked = []
    for i in range(80):
        event = events_pb2.RequestCompleted(
            event_id=f"q{i}.completed", request_id=f"q{i}", tenant=rng.choice(["acme", "globex"]),
            workload=rng.choice(["faq", "code"]), answered=True, attempt_count=1, total_cost_usd="0",
            prompt_sha256=rng.choice(["a" * 64, "b" * 64, "c" * 64]),
        )  # fmt: skip
        # clustered times, so that many fall within a window of each other and many do not
        event.occurred_at.FromDatetime(start + timedelta(seconds=rng.choice([0, 900, 2400]) + rng.uniform(0, 700)))
        asked.append(request_row(event))
    arrival = rng.sample(asked, len(asked)) + rng.sample(asked, 10)  # shuffled, and ten replayed
    while arrival:
        size = rng.choice([1, 2, 7, 30])
        store.insert_requests(arrival[:size])
        arrival = arrival[size:]

    def key(row: dict[str, object]) -> tuple[object, ...]:
        return row["tenant"], row["workload"], row["prompt_sha256"]

    expected = {
        row["request_id"]
        for row in asked
        if any(
            key(o) == key(row) and row["occurred_at"] < o["occurred_at"] <= row["occurred_at"] + window for o in asked
        )
    }
    with store.engine.connect() as conn:
        marked = {r.request_id for r in conn.execute(select(requests).where(requests.c.regenerated.is_(True)))}
    assert 10 < len(expected) < 70  # neither none nor all: the check means something
    assert marked == expected


def test_the_regeneration_check_searches_the_prompt_index(tmp_path: Path) -> None:
    """Each batch looks up its prompts' nearby requests through ix_requests_prompt; a plan that
    scans the table costs every batch the whole table (it did on SQLite: a row-value IN list)."""
    from sqlalchemy import event

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrations.upgrade(url)
    store = LedgerStore(make_engine(url))
    reads: list[tuple[str, object]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def keep(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "prompt_sha256" in statement:
            reads.append((statement, parameters))

    batch = []
    for i in range(12):  # two tenants, several prompts: one read per (tenant, workload)
        e = events_pb2.RequestCompleted(
            event_id=f"p{i}.completed", request_id=f"p{i}", tenant=("acme", "globex")[i % 2], workload="faq",
            answered=True, attempt_count=1, total_cost_usd="0", prompt_sha256=f"{i % 5:064x}",
        )  # fmt: skip
        e.occurred_at.GetCurrentTime()
        batch.append(request_row(e))
    store.insert_requests(batch)
    assert len(reads) == 2
    with store.engine.connect() as conn:
        for statement, parameters in reads:
            plan = " | ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
            # both parts (unmarked before the batch, any after its first row) search the index
            assert plan.count("USING INDEX ix_requests_prompt") == 2 and "SCAN requests" not in plan, plan
    store.engine.dispose()


async def test_lowering_raising_and_lowering_a_budget_is_enforced_each_time(bus: EventBus, store: LedgerStore) -> None:
    """Each change is a new state event (a version, not an id made of the state, which NATS
    dropped as a duplicate the second time a budget was lowered to the same limit)."""
    book = BudgetBook()
    await bus.watch_latest(f"{bus_module.SUBJECT_BUDGET}.>", book.on_message)
    watcher = BudgetWatcher(bus, store)
    store.insert_attempts([price_attempt(e, CATALOG) for e in events(3)])  # acme has spent something today

    async def set_and_wait(limit: str, action: str, exhausted: bool) -> None:
        store.set_budget(budget_row(ledger_pb2.Budget(tenant="acme", period="day", limit_usd=limit, action=action)))
        await watcher.check()
        for _ in range(100):
            states = book.exhausted("acme", "faq")
            if bool(states) == exhausted and (not states or states[0].action == action):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"limit {limit} {action}: the router still sees {book.states}")

    await set_and_wait("0.000001", "reject", exhausted=True)
    await set_and_wait("1000", "reject", exhausted=False)
    await set_and_wait("0.000001", "reject", exhausted=True)  # the same state as the first: enforced again
    await set_and_wait("0.000001", "local_only", exhausted=True)  # the action changed: routers hear it
    await set_and_wait("1000", "local_only", exhausted=False)
    await set_and_wait("0.000001", "local_only", exhausted=True)
