"""Ledger benchmarks on SQLite and PostgreSQL (a private server, as in the tests):
sustained ingest from JetStream (events/s, the service's own consumer and batch writer) and
report query latency over a large table of stored attempts."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js.errors import NotFoundError

from tests.integration.test_ledger_databases import events
from tests.postgres import postgres_server
from tierlift.core import bus as bus_module
from tierlift.core import migrations
from tierlift.core.bus import EventBus
from tierlift.core.bus_layout import bootstrap
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.core.nats_access import EventSigner, ProducerCheck, TrustedProducer, new_seed, public_key
from tierlift.devstack import free_port, nats_server_binary, wait_for_port
from tierlift.ledger import LedgerStore, attempt_ingest, make_engine, price_attempt

CATALOG = load_catalog(DEFAULT_CATALOG)


@contextmanager
def nats() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        proc = subprocess.Popen([str(nats_server_binary()), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_for_port(port, 10, proc, "nats-server")
            yield f"nats://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        with postgres_server() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{d}/ledger.db"


async def _ingest_rate(nats_url: str, store: LedgerStore, n: int) -> float:
    bus = await EventBus.connect(nats_url, name="bench")
    # signed and checked as in production: the ledger verifies each event's producer signature
    seed = new_seed()
    bus.signer = EventSigner(seed)
    check = ProducerCheck([TrustedProducer("router", public_key(seed))])
    check.start_helper()  # as the ledger's main does
    bus.trust(check)
    await bootstrap(bus.js)
    evts = events(n)
    for start in range(0, n, 1000):
        await asyncio.gather(
            *(bus.publish(bus_module.SUBJECT_ATTEMPT, e, e.event_id) for e in evts[start : start + 1000])
        )
    stop = asyncio.Event()
    started = time.perf_counter()
    ingest = attempt_ingest(bus, store, CATALOG)
    task = asyncio.create_task(bus.consume(bus_module.SUBJECT_ATTEMPT, "ledger-attempts", ingest, stop, overlap=True))
    # done when the consumer has acked everything (the ledger acks a batch after its transaction);
    # asked of JetStream, not of the database, so the polling takes nothing from the writer
    while True:
        await asyncio.sleep(0.02)
        try:
            info = await bus.js.consumer_info(bus_module.STREAM, "ledger-attempts")
        except NotFoundError:
            continue  # the consumer task has not made it yet
        if info.num_pending == 0 and info.num_ack_pending == 0 and (info.delivered.stream_seq or 0) >= n:
            break
    elapsed = time.perf_counter() - started
    assert sum(x["attempts"] for x in store.spend("", "", None, None)) == n
    stop.set()
    await task
    await bus.drain()
    return n / elapsed


def _fill(store: LedgerStore, rows: int) -> None:
    """Insert `rows` attempts spread over 30 days and 20 tenants, straight into the store."""
    template = [price_attempt(e, CATALOG) for e in events(1000)]
    start = datetime.now(UTC) - timedelta(days=30)
    for batch in range(rows // 10_000):
        chunk = []
        for i in range(10_000):
            row = dict(template[i % 1000])
            n = batch * 10_000 + i
            row["event_id"] = f"fill-{n}"
            row["tenant"] = f"tenant-{n % 20}"
            row["occurred_at"] = start + timedelta(seconds=n * 2_592_000 // rows)
            chunk.append(row)
        store.insert_attempts(chunk)


def _time(fn: Callable[[], Any], runs: int = 10) -> dict[str, float]:
    fn()  # warm
    t = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        t.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(t), 2), "max_ms": round(max(t), 2)}


def _queries(store: LedgerStore) -> dict[str, object]:
    week_ago = datetime.now(UTC) - timedelta(days=7)
    return {
        "spend_by_tenant_all_time": _time(lambda: store.spend("tenant-3", "", None, None)),
        "spend_by_tenant_last_7_days": _time(lambda: store.spend("tenant-3", "", week_ago, None)),
        "spend_everyone_all_time": _time(lambda: store.spend("", "", None, None), runs=3),
        "daily_report_by_tier_from_rollups": _time(lambda: store.daily("tenant-3", "", None, None)),
    }


def bench_ledger() -> dict[str, object]:
    ingest_events = int(os.environ.get("BENCH_INGEST_EVENTS", "20000"))
    rows = int(os.environ.get("BENCH_LEDGER_ROWS", "1000000"))
    results: dict[str, object] = {"ingest_events": ingest_events, "stored_attempts": rows}
    for kind in ("sqlite", "postgresql"):
        with database(kind) as url, nats() as nats_url:
            migrations.upgrade(url)
            store = LedgerStore(make_engine(url))
            rate = asyncio.run(_ingest_rate(nats_url, store, ingest_events))
            started = time.perf_counter()
            _fill(store, rows)
            fill_s = time.perf_counter() - started
            # the planner's statistics, as autovacuum (PostgreSQL) would have them by now in production
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            results[kind] = {
                "ingest_events_per_s": round(rate, 1),
                "bulk_insert_rows_per_s": round(rows / fill_s, 1),
                **_queries(store),
            }
            store.engine.dispose()
    return results
