"""The console's window reads give exactly what summing the stored rows gives: spend from the daily
rollups plus the part-days at the window's ends (LedgerStore.spend), the routing mix and outcome
counts from the daily outcome rollups plus the part-days (routing_mix, outcomes_of), and the quality
page's counts and latency percentiles in SQL (QualityStore.report). Each is checked against the
plain computation over rows planted on SQLite and on a private PostgreSQL, and the outcome rollups
against the requests and faults stored, whatever order they arrive in."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tierlift.core import migrations
from tierlift.ledger import LedgerStore, make_engine
from tierlift.ledger._kinds import kind_spend, kinds_of_sum, summed_kinds
from tierlift.ledger._quality import QualityStore
from tierlift.ledger._requests import outcomes_of, routing_mix
from tierlift.ledger._schema import (
    KIND_COST_COLUMNS,
    KIND_TOKEN_COLUMNS,
    answer_latencies,
    attempts,
    daily_requests,
    metadata,
    requests,
)

NOW = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
MODELS = [("LOCAL", "gemma-3-270m-cpu"), ("CLOSED", "gpt-5-mini"), ("FRONTIER", "claude-opus-4-5")]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    url = (
        f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    migrations.upgrade(url)
    engine = make_engine(url)
    try:
        yield LedgerStore(engine)
    finally:
        with engine.begin() as conn:  # one PostgreSQL for the module: empty it for the next test
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
        engine.dispose()


def _attempt(n: int, i: int, at: datetime, **extra: Any) -> dict[str, Any]:
    tier, model = MODELS[(n + i) % len(MODELS)]
    cost = Decimal(f"0.000{n % 7 + 1}{i}3") + Decimal("0.000000000001") * n
    return {"event_id": f"r{n}.attempt.{i}", "request_id": f"r{n}", "attempt_index": i,
            "tenant": f"t{n % 2}", "workload": ("chat", "code")[n % 3 == 0], "tier": tier, "model": model,
            "adapter": "a", "outcome": "ANSWERED", "input_tokens": 100 + n, "output_tokens": 7 * (n % 11),
            "cost_usd": cost, "input_usd_per_million": Decimal("0.25"), "output_usd_per_million": Decimal("2"),
            "price_version": "v1", "latency_ms": float(100 + (n * 37 + i * 11) % 90), "confidence": 0.9,
            "occurred_at": at, "recorded_at": at, "kind": "live", "estimated": False, "unsettled": False,
            **dict.fromkeys(KIND_TOKEN_COLUMNS, n % 3), **dict.fromkeys(KIND_COST_COLUMNS, Decimal("0.0000001") * i),
            **extra}  # fmt: skip


def _planted(store: LedgerStore) -> list[dict[str, Any]]:
    """Attempts over four UTC days, every few hours: some escalated (a second attempt), some
    faulted before a later rung answered, shadow runs, and rows estimated or unsettled, some of
    those later replaced by their usage report or outcome (the rollups follow the replacement)."""
    rows: list[dict[str, Any]] = []
    for n in range(60):
        at = NOW - timedelta(days=3, hours=11) + timedelta(minutes=97 * n)
        first = _attempt(n, 0, at, estimated=n % 9 == 2, unsettled=n % 13 == 5)
        if n % 4 == 1:
            first["outcome"] = "LOW_CONFIDENCE" if n % 8 == 1 else "FAULT"
            rows += [first, _attempt(n, 1, at + timedelta(seconds=3))]
        else:
            rows.append(first)
        if n % 10 == 3:
            rows.append(_attempt(n, 9, at, kind="shadow", outcome="FAULT"))
    store.insert_attempts(rows)
    reported = [r | {"estimated": False, "input_tokens": r["input_tokens"] + 50, "cost_usd": r["cost_usd"] * 3}
                for r in rows if r["estimated"] and int(r["request_id"][1:]) % 2 == 0]  # fmt: skip
    store.correct_attempts(reported)
    # an outcome carries the time the call ended: hours after the row billed from its start, at times the next day
    settled = [r | {"unsettled": False, "output_tokens": 1, "cost_usd": Decimal("0.000001"),
                    "occurred_at": r["occurred_at"] + timedelta(hours=13)}
               for r in rows if r["unsettled"] and int(r["request_id"][1:]) % 2 == 1]  # fmt: skip
    assert any(r["occurred_at"].date() != (r["occurred_at"] - timedelta(hours=13)).date() for r in settled)
    store.insert_attempts(settled)
    replaced = {r["event_id"]: r for r in reported + settled}
    return [replaced.get(r["event_id"], r) for r in rows]


def _spend_of(rows: list[dict[str, Any]], tenant: str, since: datetime | None, until: datetime | None) -> list[Any]:
    """Live spend lines summed from the attempt rows themselves."""
    lines: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in rows:
        if r["kind"] != "live" or (tenant and r["tenant"] != tenant):
            continue
        if (since and r["occurred_at"] < since) or (until and r["occurred_at"] >= until):
            continue
        key = (r["tenant"], r["workload"], r["tier"], r["model"])
        line = lines.setdefault(
            key, defaultdict(int, dict(zip(("tenant", "workload", "tier", "model"), key, strict=True)))
        )
        line["attempts"] += 1
        line["estimated_attempts"] += r["estimated"]
        line["unsettled_attempts"] += r["unsettled"]
        for name in ("input_tokens", "output_tokens", *KIND_TOKEN_COLUMNS, "cost_usd", *KIND_COST_COLUMNS):
            line[name] += r[name]
    return [dict(lines[key]) for key in sorted(lines)]


def _same(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    """The same lines in the same order with the same values (a sum of none is 0 either way)."""

    def nonzero(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in line.items() if v or k == "attempts"} for line in lines]

    return nonzero(got) == nonzero(expected)


def _windows() -> list[tuple[datetime | None, datetime | None]]:
    midnight = NOW.replace(hour=0, minute=30) - timedelta(minutes=30)
    edges = [None, midnight - timedelta(days=2), midnight - timedelta(days=2, hours=-5), midnight,
             midnight + timedelta(hours=1), NOW]  # fmt: skip
    return [(s, u) for s, u in itertools.product(edges, edges) if not (s and u and s > u)]


def test_spend_from_rollups_and_part_days_is_what_the_attempts_sum_to(store: LedgerStore) -> None:
    rows = _planted(store)
    assert any(r["estimated"] for r in rows) and any(r["unsettled"] for r in rows)
    for (since, until), tenant in itertools.product(_windows(), ("", "t1")):
        assert _same(store.spend(tenant, "", since, until), _spend_of(rows, tenant, since, until)), (since, until)
    assert sum(line["attempts"] for line in store.spend("", "", None, None)) == sum(r["kind"] == "live" for r in rows)
    # per tier and model (the overview's GetSpend), and the window's kinds from the lines' sums
    for since, until in _windows():
        lines = store.spend("", "", since, until)
        by_model: dict[tuple[str, str], dict[str, Any]] = {}
        for line in lines:
            summed = by_model.setdefault((line["tier"], line["model"]), defaultdict(int, tenant="", workload=""))
            for name, value in line.items():
                if name not in ("tenant", "workload", "tier", "model"):
                    summed[name] += value
        expected = [dict(by_model[key], tier=key[0], model=key[1]) for key in sorted(by_model)]
        assert _same(store.spend("", "", since, until, by_model=True), expected), (since, until)
        assert kinds_of_sum(lines) == summed_kinds(kind_spend(line) for line in lines)


def _request(n: int, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    ours = sorted((a for a in attempts if a["request_id"] == f"r{n}" and a["kind"] == "live"),
                  key=lambda a: a["attempt_index"])  # fmt: skip
    last = ours[-1]
    answered = last["outcome"] == "ANSWERED" and n % 17 != 4  # some end unanswered (the caller gave up)
    return {"request_id": f"r{n}", "event_id": f"r{n}.completed", "tenant": last["tenant"],
            "workload": last["workload"], "answered": answered, "final_tier": last["tier"] if answered else "",
            "final_model": last["model"] if answered else "", "attempt_count": len(ours),
            "escalated": any(a["outcome"] == "LOW_CONFIDENCE" for a in ours),
            "total_cost_usd": sum((a["cost_usd"] for a in ours), Decimal(0)),
            "occurred_at": last["occurred_at"] + timedelta(seconds=1), "regenerated": n % 5 == 0,
            "data_class": ("PUBLIC", "INTERNAL", "")[n % 3]}  # fmt: skip


def test_the_routing_mix_and_outcome_counts_are_what_the_requests_add_up_to(store: LedgerStore) -> None:
    attempts = _planted(store)
    requests = [_request(n, attempts) for n in range(60)]
    store.insert_requests(requests)
    faulted = {(a["request_id"], a["tenant"]) for a in attempts if a["kind"] == "live" and a["outcome"] == "FAULT"}
    for since, until in _windows():
        inside = [r for r in requests if (not since or r["occurred_at"] >= since)
                  and (not until or r["occurred_at"] < until)]  # fmt: skip
        mix = routing_mix(store.engine, "", "", since, until)
        expected: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
        for r in inside:
            key = (r["answered"], r["final_tier"], r["final_model"], r["data_class"] or "UNRECORDED", r["escalated"])
            expected[key][0] += 1
            expected[key][1] += r["answered"] and (r["request_id"], r["tenant"]) in faulted
        got = {(g["answered"], g["final_tier"], g["final_model"], g["data_class"], g["escalated"]):
               [g["requests"], g["fell_back"]] for g in mix}  # fmt: skip
        assert got == dict(expected), (since, until)
        outcomes = store.request_outcomes("", "", since, until)
        assert outcomes_of(mix) == sorted(
            ({**o, "requests": int(o["requests"])} for o in outcomes),
            key=lambda o: (o["answered"], o["final_tier"], o["escalated"]),
        )
    assert any(g["fell_back"] for g in routing_mix(store.engine, "", "", None, None))
    _assert_rollups_exact(store)


_KEYS = ("tenant", "workload", "answered", "final_tier", "final_model", "data_class", "escalated")


def _assert_rollups_exact(store: LedgerStore) -> None:
    """daily_requests holds, per day and key, exactly the stored requests and how many of the
    answered ones have a live FAULT attempt of their request and tenant."""
    with store.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(requests.select()).mappings()]
        faulted = {(a.request_id, a.tenant) for a in conn.execute(attempts.select()) if a.kind == "live"
                   and a.outcome == "FAULT"}  # fmt: skip
        rolled = {(r["day"], *(r[k] for k in _KEYS)): (int(r["requests"]), int(r["fell_back"]))
                  for r in conn.execute(daily_requests.select()).mappings()
                  if r["requests"] or r["fell_back"]}  # fmt: skip
    expected: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for r in stored:
        at = r["occurred_at"]
        day = (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)).date()
        counts = expected[(day, *(r[k] for k in _KEYS))]
        counts[0] += 1
        counts[1] += r["answered"] and (r["request_id"], r["tenant"]) in faulted
    assert rolled == {key: tuple(n) for key, n in expected.items()}
    # and answer_latencies each live ANSWERED attempt on an answered request's final model
    with store.engine.connect() as conn:
        kept = sorted((r.request_id, r.event_id, r.tenant, r.workload, r.model, r.latency_ms)
                      for r in conn.execute(answer_latencies.select()))  # fmt: skip
        answers = [a for a in conn.execute(attempts.select()) if a.kind == "live" and a.outcome == "ANSWERED"]
    by_id = {r["request_id"]: r for r in stored if r["answered"]}
    linked = [(a, by_id[a.request_id]) for a in answers if a.request_id in by_id]
    assert kept == sorted((a.request_id, a.event_id, r["tenant"], r["workload"], a.model, a.latency_ms)
                          for a, r in linked if a.model == r["final_model"])  # fmt: skip


def _mix_of(rows: list[dict[str, Any]], faulted: set[tuple[str, str]], since: datetime | None,
            until: datetime | None) -> dict[tuple[Any, ...], list[int]]:  # fmt: skip
    expected: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if (since and r["occurred_at"] < since) or (until and r["occurred_at"] >= until):
            continue
        key = (r["answered"], r["final_tier"], r["final_model"], r["data_class"] or "UNRECORDED", r["escalated"])
        expected[key][0] += 1
        expected[key][1] += r["answered"] and (r["request_id"], r["tenant"]) in faulted
    return dict(expected)


def test_the_outcome_rollups_follow_requests_and_faults_in_any_order_and_replayed(store: LedgerStore) -> None:
    attempts_stored = _planted(store)
    requests_all = [_request(n, attempts_stored) for n in range(60)]
    # stored twice, and twice in one batch: counted once
    store.insert_requests(requests_all[:30])
    store.insert_requests(requests_all[:10] + requests_all[:10])
    store.insert_settled([{"event_id": "x", "attempts": [a for a in attempts_stored if a["request_id"] == "r1"],
                           "request": requests_all[1]}])  # fmt: skip
    _assert_rollups_exact(store)
    # the rest had no outcome: placeholders, on the day of their last attempt, then the real outcomes
    assert store.reconcile(NOW + timedelta(days=1)) == 30
    _assert_rollups_exact(store)
    late = requests_all[30:]
    late[0] = late[0] | {"occurred_at": late[0]["occurred_at"] + timedelta(days=1)}  # another day than its placeholder
    store.insert_requests(late)
    _assert_rollups_exact(store)
    # a run that failed, then the same request answered by a later run (moved to another model and day)
    failed = _request(33, attempts_stored) | {"request_id": "r900", "event_id": "r900.failed", "answered": False,
                                              "final_tier": "", "final_model": "", "escalated": True}  # fmt: skip
    store.insert_requests([failed])
    answered = failed | {"event_id": "r900.completed", "answered": True, "final_tier": "FRONTIER",
                         "escalated": False, "final_model": "claude-opus-4-5",
                         "occurred_at": failed["occurred_at"] + timedelta(hours=20)}  # fmt: skip
    store.insert_requests([answered])
    store.insert_requests([failed])  # the failed run replayed: the answer stays
    _assert_rollups_exact(store)
    # a fault after its answered request, replayed; one of another tenant's, which is not this request's
    fault = _attempt(900, 0, answered["occurred_at"], request_id="r900", tenant=answered["tenant"], outcome="FAULT",
                     event_id="r900.attempt.0")  # fmt: skip
    store.insert_attempts([fault])
    store.insert_attempts([fault, fault | {"event_id": "r900.attempt.5"}])  # a second fault: still one fallback
    store.insert_attempts([fault | {"event_id": "r900.other", "tenant": "someone-else"}])
    _assert_rollups_exact(store)
    # a call billed unsettled (a FAULT at its worst case) whose outcome comes later: an answer, so
    # the request no longer fell back on its account
    faulty = {a["request_id"] for a in attempts_stored if a["outcome"] == "FAULT" and a["kind"] == "live"}
    clean = next(r for r in requests_all if r["answered"] and r["request_id"] not in faulty)
    n = int(clean["request_id"][1:])
    before = _rolled_fell_back(store)
    worst = _attempt(n, 7, clean["occurred_at"], outcome="FAULT", unsettled=True, event_id=f"r{n}.attempt.7")
    store.settle_started([], [worst])
    assert _rolled_fell_back(store) == before + 1
    _assert_rollups_exact(store)
    store.insert_attempts([worst | {"unsettled": False, "outcome": "ANSWERED"}])
    assert _rolled_fell_back(store) == before
    _assert_rollups_exact(store)
    # a request settled with its answering attempt and a fault in one event
    settled = _request(7, attempts_stored) | {"request_id": "r901", "event_id": "r901.completed", "answered": True}
    store.insert_settled([{"event_id": "r901.settled", "request": settled, "attempts": [
        _attempt(901, 0, settled["occurred_at"], request_id="r901", tenant=settled["tenant"], outcome="FAULT"),
        _attempt(901, 1, settled["occurred_at"], request_id="r901", tenant=settled["tenant"])]}])  # fmt: skip
    _assert_rollups_exact(store)
    with store.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(requests.select()).mappings()]
        faulted = {(a.request_id, a.tenant) for a in conn.execute(attempts.select()) if a.kind == "live"
                   and a.outcome == "FAULT"}  # fmt: skip
    for r in stored:
        r["occurred_at"] = r["occurred_at"] if r["occurred_at"].tzinfo else r["occurred_at"].replace(tzinfo=UTC)
    for (since, until), tenant in itertools.product(_windows(), ("", "t1")):
        mix = routing_mix(store.engine, tenant, "", since, until)
        got = {(g["answered"], g["final_tier"], g["final_model"], g["data_class"], g["escalated"]):
               [g["requests"], g["fell_back"]] for g in mix}  # fmt: skip
        ours = [r for r in stored if not tenant or r["tenant"] == tenant]
        assert got == _mix_of(ours, faulted, since, until), (since, until, tenant)


def test_a_fault_written_while_its_request_is_being_stored_is_counted_once(store: LedgerStore) -> None:
    """Two ledgers (or the request and attempt consumers of one) at once on PostgreSQL: the fault's
    transaction waits for the request's lock, then sees its row; whichever order, one fallback."""
    import threading

    from tierlift.ledger._outcomes import OutcomeChanges

    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    at = NOW - timedelta(hours=3)
    for n, request_first in ((700, True), (701, False)):
        answer = _attempt(n, 1, at)
        request = _request(n, [answer]) | {"answered": True, "final_tier": answer["tier"],
                                           "final_model": answer["model"]}  # fmt: skip
        fault = _attempt(n, 0, at, outcome="FAULT")
        first, second = ([request], [fault]) if request_first else ([fault], [request])
        conn = store.engine.connect()
        outcomes = OutcomeChanges()
        with conn.begin():
            if request_first:
                store._insert_requests(conn, first, outcomes)
            else:
                store._insert_attempts(conn, first, outcomes)
            outcomes.flush(conn, store._insert)  # holds the request's lock until the commit
            other = threading.Thread(
                target=store.insert_attempts if request_first else store.insert_requests, args=(second,)
            )
            other.start()
            other.join(timeout=1)
            assert other.is_alive()  # waiting for the lock
        other.join()
        conn.close()
    _assert_rollups_exact(store)
    assert _rolled_fell_back(store) == 2


def _rolled_fell_back(store: LedgerStore) -> int:
    with store.engine.connect() as conn:
        return sum(int(r.fell_back) for r in conn.execute(daily_requests.select()))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_quality_counts_and_latency_percentiles_are_what_the_rows_give(store: LedgerStore) -> None:
    attempts = _planted(store)
    # paths of 1, 2, 20 and more latencies, with ties, and a request answered twice on its model
    more = [_attempt(1000 + n, 0, NOW - timedelta(hours=2, minutes=n), workload="tie", model="m-tie", tier="LOCAL",
                     latency_ms=float(n // 3)) for n in range(41)]  # fmt: skip
    more += [_attempt(2000 + n, 0, NOW - timedelta(hours=1, minutes=n), workload="twenty", model="m-20", tier="LOCAL",
                      latency_ms=0.1 * (n * 7 % 20)) for n in range(20)]  # fmt: skip
    hour_ago = NOW - timedelta(hours=1)
    more += [_attempt(3000, 0, hour_ago, workload="one", model="m-1", tier="LOCAL", latency_ms=42.5)]
    more += [_attempt(3001, i, hour_ago, workload="two", model="m-2", tier="LOCAL", latency_ms=1.25 * (i + 1))
             for i in (0, 1)]  # fmt: skip
    store.insert_attempts(more)
    attempts += more
    requests = [_request(n, attempts) for n in [*range(60), *range(1000, 1041), *range(2000, 2020), 3000, 3001]]
    store.insert_requests(requests)
    quality, seen = QualityStore(store.engine), set()
    for since, until in [(NOW - timedelta(days=7), NOW), (NOW - timedelta(days=1, hours=3), NOW - timedelta(hours=1))]:
        for tenant in ("", "t0"):
            report = quality.report(tenant, "", since, until)
            served = [r for r in requests if r["answered"] and since <= r["occurred_at"] < until
                      and (not tenant or r["tenant"] == tenant)]  # fmt: skip
            ids = {r["request_id"]: r for r in served}
            latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
            for a in attempts:
                r = ids.get(a["request_id"])
                if r and a["kind"] == "live" and a["outcome"] == "ANSWERED" and a["model"] == r["final_model"]:
                    latencies[r["workload"], a["model"]].append(a["latency_ms"])
            paths: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
            for r in served:
                paths[r["workload"], r["final_model"]].append(r)
            assert [(line.workload, line.model) for line in report.lines] == sorted(paths)
            for line in report.lines:
                rows, ms = paths[line.workload, line.model], latencies[line.workload, line.model]
                assert line.requests == len(rows) and line.tier == rows[0]["final_tier"]
                assert line.share == len(rows) / sum(len(p) for (w, _), p in paths.items() if w == line.workload)
                assert line.regeneration_rate == sum(r["regenerated"] for r in rows) / len(rows)
                assert line.escalation_rate == sum(r["escalated"] for r in rows) / len(rows)
                assert Decimal(line.cost_usd) == sum((r["total_cost_usd"] for r in rows), Decimal(0))
                assert line.p50_latency_ms == (statistics.median(ms) if ms else 0.0)
                assert line.p95_latency_ms == (_percentile(ms, 0.95) if ms else 0.0)
            seen |= {line.workload for line in report.lines if line.p95_latency_ms}
    assert seen >= {"tie", "twenty", "one", "two"}


def test_migration_0016_rebuilds_the_rollups_from_the_attempts_they_sum(store: LedgerStore) -> None:
    from alembic import command
    from sqlalchemy import text

    url = store.engine.url.render_as_string(hide_password=False)
    rows = _planted(store)
    command.downgrade(migrations.alembic_config(url), "0015")
    unrolled = _attempt(500, 0, NOW - timedelta(days=1, hours=3))  # stored before the rollups existed
    with store.engine.begin() as conn:
        conn.execute(metadata.tables["attempts"].insert(), [unrolled])
        conn.execute(text("UPDATE daily_spend SET attempts = attempts + 5, cost_usd = cost_usd + 7"))  # drifted
    migrations.upgrade(url)
    rows.append(unrolled)
    for since, until in _windows():
        assert _same(store.spend("", "", since, until), _spend_of(rows, "", since, until)), (since, until)
    days = store.daily("", "", None, None)
    assert sum(d["attempts"] for d in days) == sum(r["kind"] == "live" for r in rows)
    assert sum((d["cost_usd"] for d in days), Decimal(0)) == sum(
        (r["cost_usd"] for r in rows if r["kind"] == "live"), Decimal(0)
    )


def test_migration_0017_builds_the_outcome_rollups_from_the_requests_stored(store: LedgerStore) -> None:
    from alembic import command

    url = store.engine.url.render_as_string(hide_password=False)
    attempts_stored = _planted(store)
    command.downgrade(migrations.alembic_config(url), "0016")
    with store.engine.begin() as conn:  # as a ledger before 0017 stored them
        conn.execute(requests.insert(), [_request(n, attempts_stored) for n in range(60)])
    migrations.upgrade(url)
    _assert_rollups_exact(store)
    assert _rolled_fell_back(store) > 0
    with store.engine.connect() as conn:
        assert conn.execute(answer_latencies.select()).first() is not None


def test_the_partial_indexes_name_the_outcome_and_kind_the_ledger_stores() -> None:
    from tierlift.ledger._schema import FAULT, LIVE, LIVE_FAULTS
    from tierlift.v1 import router_pb2

    fault = router_pb2.Outcome.Name(router_pb2.OUTCOME_FAULT).removeprefix("OUTCOME_")
    assert (FAULT.name, LIVE.name) == (f"'{fault}'", "'live'")
    assert f"outcome = {FAULT.name} AND kind = {LIVE.name}" == LIVE_FAULTS
