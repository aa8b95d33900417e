"""No loss, no double count: 20,000 attempt events, the ledger process SIGKILLed mid-ingest
and restarted; the stored totals equal the published totals to the picodollar, and
publishing every event again changes nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import grpc

from tests.integration.test_ledger_databases import events, expected_total
from tierlift.core import bus as bus_module
from tierlift.core import migrations
from tierlift.core.bus import EventBus
from tierlift.core.identity import with_key
from tierlift.devstack import bootstrap_keys, free_port, run_bootstrap, wait_healthy
from tierlift.v1 import ledger_pb2, ledger_pb2_grpc

EVENTS = 20_000


def start_ledger(tmp_path: Path, nats_url: str, db_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TIERLIFT_NATS_URL": nats_url, "TIERLIFT_DATABASE_URL": db_url,
           "TIERLIFT_LISTEN": f"127.0.0.1:{port}", "TIERLIFT_LOG_LEVEL": "warning"}  # fmt: skip
    log = tmp_path / "ledger.log"
    proc = subprocess.Popen([sys.executable, "-m", "tierlift.ledger.main"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)  # fmt: skip
    wait_healthy(f"127.0.0.1:{port}", 60, proc, "ledger", log)
    return proc


def stored(port: int, admin_key: str) -> ledger_pb2.SpendReport:
    with with_key(grpc.insecure_channel(f"127.0.0.1:{port}"), admin_key) as channel:
        return ledger_pb2_grpc.LedgerStub(channel).GetSpend(ledger_pb2.SpendQuery(tenant="acme"), timeout=30)


async def publish_all(nats_url: str, suffix: str = "") -> None:
    bus = await EventBus.connect(nats_url, name="publisher")
    try:
        evts = events(EVENTS)
        for start in range(0, EVENTS, 500):
            await asyncio.gather(
                *(bus.publish(bus_module.SUBJECT_ATTEMPT, e, e.event_id + suffix) for e in evts[start : start + 500])
            )
    finally:
        await bus.drain()


async def pending(nats_url: str) -> int:
    bus = await EventBus.connect(nats_url, name="inspector")
    try:
        info = await bus.js.consumer_info(bus_module.STREAM, "ledger-attempts")
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    finally:
        await bus.drain()


def test_sigkill_mid_ingest_loses_nothing_and_replays_count_once(nats_url: str, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrations.upgrade(db_url)
    admin_key = bootstrap_keys(tmp_path, db_url)["admin"]
    run_bootstrap(nats_url, seed="", tls=None)  # the stream and the ledger's durables
    port = free_port()
    ledger = start_ledger(tmp_path, nats_url, db_url, port)
    asyncio.run(publish_all(nats_url))

    while stored(port, admin_key).total_attempts < EVENTS // 4:
        time.sleep(0.01)
    ledger.send_signal(signal.SIGKILL)  # no drain, no goodbye: whatever was in flight is unacked
    ledger.wait()
    # counted in the file, before the restart: a restarted ledger may catch up before any report
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        [(killed_at,)] = db.execute("SELECT count(*) FROM attempts").fetchall()
    ledger = start_ledger(tmp_path, nats_url, db_url, port)
    try:
        deadline = time.monotonic() + 120
        while (report := stored(port, admin_key)).total_attempts < EVENTS:
            assert time.monotonic() < deadline, f"only {report.total_attempts} of {EVENTS} stored after restart"
            time.sleep(0.2)
        assert killed_at < EVENTS  # the kill really happened mid-ingest
        assert report.total_attempts == EVENTS
        assert Decimal(report.total_cost_usd) == expected_total(events(EVENTS))

        asyncio.run(publish_all(nats_url, suffix=".again"))  # every event again, new message ids
        deadline = time.monotonic() + 120
        while asyncio.run(pending(nats_url)):
            assert time.monotonic() < deadline, "the replayed events were not consumed"
            time.sleep(0.2)
        again = stored(port, admin_key)
        assert (again.total_attempts, again.total_cost_usd) == (report.total_attempts, report.total_cost_usd)
    finally:
        ledger.send_signal(signal.SIGTERM)
        assert ledger.wait(30) == 0
