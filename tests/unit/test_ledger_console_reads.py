"""The console's window reads give exactly what summing the stored rows gives: spend from the daily
rollups plus the part-days at the window's ends (LedgerStore.spend), the routing mix and outcome
counts from one read of the requests (routing_mix, outcomes_of), and the quality page's counts and
latency percentiles in SQL (QualityStore.report). Each is checked against the plain computation
over rows planted on SQLite and on a private PostgreSQL."""

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
from tierlift.ledger._quality import QualityStore
from tierlift.ledger._requests import outcomes_of, routing_mix
from tierlift.ledger._schema import KIND_COST_COLUMNS, KIND_TOKEN_COLUMNS, metadata

NOW = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
MODELS = [("LOCAL", "gemma-3-270m-cpu"), ("CLOSED", "gpt-5-mini"), ("FRONTIER", "claude-opus-4-5")]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    from tests.postgres import postgres_server

    try:
        server = postgres_server()
        url = server.__enter__()
    except RuntimeError as exc:  # no PostgreSQL on this machine
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


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
    command.downgrade(migrations.alembic_config(url), "0015")
    rows = _planted(store)
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


def test_the_partial_indexes_name_the_outcome_and_kind_the_ledger_stores() -> None:
    from tierlift.ledger._schema import FAULT, LIVE, LIVE_FAULTS
    from tierlift.v1 import router_pb2

    fault = router_pb2.Outcome.Name(router_pb2.OUTCOME_FAULT).removeprefix("OUTCOME_")
    assert (FAULT.name, LIVE.name) == (f"'{fault}'", "'live'")
    assert f"outcome = {FAULT.name} AND kind = {LIVE.name}" == LIVE_FAULTS
