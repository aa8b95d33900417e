"""Cost ledger entry point: `python -m tierlift.ledger.main`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import Field

from tierlift.core import bus as bus_module
from tierlift.core.bus_layout import LEASE_BUCKET, durable_for
from tierlift.core.catalog import Catalog, load_catalog
from tierlift.core.config import DEFAULT_CATALOG, BusSettings, load_settings, secret
from tierlift.core.entry import run_service
from tierlift.core.grpc_server import GrpcServer
from tierlift.core.identity import ASSESSOR, Authenticate, KeyBook
from tierlift.core.ids import nul_field
from tierlift.core.logging import configure_logging, get_logger
from tierlift.core.migrations import require_head
from tierlift.core.signed_bucket import SignedBucket
from tierlift.core.telemetry import configure_telemetry
from tierlift.ledger._budgets import BudgetWatcher
from tierlift.ledger._ingest import (
    attempt_ingest,
    request_ingest,
    settle_started,
    settled_ingest,
    started_ingest,
    usage_report_ingest,
)
from tierlift.ledger._keys import KeyKeeper, KeyStore, audit_ingest, key_use_ingest
from tierlift.ledger._leases import DEFAULT_SETTLE_S, DEFAULT_TTL_S, BucketBooks, LeaseDesk
from tierlift.ledger._quality import QualityStore, quality_ingests
from tierlift.ledger._servicer import LedgerServicer
from tierlift.ledger._store import LedgerStore, make_engine
from tierlift.v1 import ledger_pb2, ledger_pb2_grpc

log = get_logger(__name__)
_READERS = frozenset({"viewer", "finance", "admin"})
_ADMIN = frozenset({"admin"})
LEDGER_ROLES = {
    **{
        f"/tierlift.v1.Ledger/{m}": _READERS
        for m in ("GetSpend", "GetReport", "ListAttempts", "ListBudgets", "ListRequests")
    },
    **{
        f"/tierlift.v1.Ledger/{m}": _ADMIN
        for m in ("SetBudget", "DeleteBudget", "CreateKey", "ListKeys", "RevokeKey", "RotateKey")
    },
    "/tierlift.v1.Ledger/ListAudit": frozenset({"finance", "admin"}),
    "/tierlift.v1.Ledger/GetQuality": _READERS,
    # the assessor's rollout controller (with its service key), and admins looking on
    "/tierlift.v1.Ledger/GetRolloutEvidence": frozenset({ASSESSOR, "admin"}),
    "/tierlift.v1.Ledger/ListOutcomes": _ADMIN,
}


class LedgerSettings(BusSettings):
    database_url: str = "sqlite:///.tierlift/ledger.db"
    catalog: Path = DEFAULT_CATALOG
    # events per fetch and per transaction; JetStream lets each consumer hold 8 batches unacked
    ingest_batch: int = Field(default=256, ge=1, le=10_000)
    # A short batch waits this long once for more: fewer, larger transactions under steady load.
    # The ledger is off the request path; spend and budget states trail by this much more. At
    # ~120 requests/s, 0.25 s took the ledger's CPU per request from 2.3 to 1.2 ms (was 0.05).
    ingest_linger_s: float = Field(default=0.25, ge=0, le=1)
    # attempts whose request reported no outcome this long get a placeholder request saying so
    reconcile_after_s: float = Field(default=600.0, gt=0)
    reconcile_every_s: float = Field(default=60.0, gt=0)
    # a provider call written ahead (tierlift.attempt.started) with no outcome this long after its
    # deadline is billed at its worst case, `unsettled` (its outcome, if it comes, replaces it)
    unsettled_after_s: float = Field(default=120.0, gt=0)
    settle_every_s: float = Field(default=10.0, gt=0)
    # the same prompt (tenant, workload) again within this many seconds marks the first regenerated
    regeneration_window_s: float = Field(default=600.0, gt=0)
    # budget leases (ledger/_leases.py): a lease lapses this long after its router last renewed
    # it; a budget whose leases have all lapsed this long is counted from the store again
    lease_ttl_s: float = Field(default=DEFAULT_TTL_S, gt=0)
    lease_settle_s: float = Field(default=DEFAULT_SETTLE_S, gt=0)


async def reconcile_forever(store: LedgerStore, after_s: float, every_s: float) -> None:
    """Keep the books reconcilable: every attempt row joins a request row that explains it."""
    while True:
        try:
            cutoff = datetime.now(UTC) - timedelta(seconds=after_s)
            written = await asyncio.to_thread(store.reconcile, cutoff)
            if written:
                log.warning("requests_reconciled", placeholders=written)
        except Exception:
            log.exception("reconcile_failed")
        await asyncio.sleep(every_s)


async def settle_forever(
    store: LedgerStore,
    catalog: Catalog,
    after_s: float,
    every_s: float,
    grew: Callable[[set[tuple[str, str]]], Awaitable[None]],
) -> None:
    """Bill the provider calls that started and never finished (ledger/_ingest.py settle_started)."""
    while True:
        try:
            cutoff = datetime.now(UTC) - timedelta(seconds=after_s)
            billed, touched = await asyncio.to_thread(settle_started, store, catalog, cutoff)
            if billed:
                log.warning("attempts_unsettled", billed_at_worst_case=billed)
            if touched:
                await grew(touched)
        except Exception:
            log.exception("settle_started_failed")
        await asyncio.sleep(every_s)


async def sync_keys_forever(keys: KeyKeeper, every_s: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await keys.record_own_use()  # last_used_at of the keys that call the ledger
            if changed := await keys.publish_changes():
                log.info("keys_published", changed=changed)
        except Exception:
            log.exception("key_sync_failed")


async def run() -> None:
    settings = load_settings(LedgerSettings)
    configure_logging("ledger", settings.log_level)
    telemetry = configure_telemetry("ledger", settings.otlp_endpoint, settings.metrics_listen)
    catalog = load_catalog(settings.catalog)
    database_url = secret("TIERLIFT_DATABASE_URL") or settings.database_url
    engine = make_engine(database_url)
    require_head(engine, database_url)
    store = LedgerStore(engine, settings.regeneration_window_s)
    store.record_prices(catalog)

    bus = await settings.connect_bus("ledger")
    if bus.producers is None:
        log.warning("event_producers_not_checked", hint="set TIERLIFT_TRUSTED_PRODUCERS to the routers' nkeys")
    else:  # a backlog comes right after a start (deploy, outage): verify it in the helper from the first second
        bus.producers.start_helper()
    await bus.wait_for_stream()
    budgets = BudgetWatcher(bus, store)
    await budgets.check()  # routers starting now learn every budget's state
    books = BucketBooks(await SignedBucket.open(bus.js, LEASE_BUCKET, bus.signer))
    leases = LeaseDesk(store, books, settings.lease_ttl_s, settings.lease_settle_s)
    await leases.start(bus)  # routers reserve against budgets from here (NATS request/reply)
    stop_ingest = asyncio.Event()
    ingests = {
        bus_module.SUBJECT_ATTEMPT: attempt_ingest(bus, store, catalog, budgets.check),
        bus_module.SUBJECT_COMPLETED: request_ingest(bus, store),
        bus_module.SUBJECT_SETTLED: settled_ingest(bus, store, catalog, budgets.check),
        bus_module.SUBJECT_ATTEMPT_USAGE: usage_report_ingest(bus, store, catalog, budgets.check),
        bus_module.SUBJECT_ATTEMPT_STARTED: started_ingest(bus, store, catalog),
    }
    consumers = [
        asyncio.create_task(
            bus.consume(
                subject,
                durable_for(subject, "ledger"),
                handler,
                stop_ingest,
                settings.ingest_batch,
                linger_s=settings.ingest_linger_s,
                overlap=True,
            )
        )
        for subject, handler in ingests.items()
    ]

    reconciler = asyncio.create_task(reconcile_forever(store, settings.reconcile_after_s, settings.reconcile_every_s))
    settler = asyncio.create_task(
        settle_forever(store, catalog, settings.unsettled_after_s, settings.settle_every_s, budgets.check)
    )

    quality = QualityStore(engine)
    keys = KeyKeeper(KeyStore(engine), bus, KeyBook())
    keys.book.trust_certificates(settings.tls_identities)
    for sha256 in settings.trusted_assessor_hashes():  # the rollout controller reads evidence
        keys.book.trust_service(sha256, ASSESSOR)
    key_consumers = [
        asyncio.create_task(bus.consume(subject, durable_for(subject, "ledger"), ingest, stop_ingest))
        for subject, ingest in (
            (f"{bus_module.SUBJECT_AUDIT}.>", audit_ingest(bus, keys.store)),
            (bus_module.SUBJECT_KEYS_USED, key_use_ingest(bus, keys.store)),
            *quality_ingests(bus, quality).items(),
        )
    ]
    await keys.publish_all()  # every service learns every key's state (and revocation) from here
    key_sync = asyncio.create_task(sync_keys_forever(keys))
    server = GrpcServer.for_settings("ledger", settings, Authenticate(keys.book, LEDGER_ROLES), check=nul_field)
    # A ledger that stopped ingesting must not look healthy: stop the process so it restarts.
    for consumer in consumers:
        consumer.add_done_callback(lambda _task: server.request_stop())
    ledger_pb2_grpc.add_LedgerServicer_to_server(LedgerServicer(store, budgets, keys, quality), server.server)
    server.add_service(ledger_pb2.DESCRIPTOR.services_by_name["Ledger"].full_name)

    await server.start()
    server.stop_on_signals()

    async def stop_consuming() -> None:
        # Let the batches in hand commit and ack; unacked messages are redelivered anyway.
        reconciler.cancel()
        settler.cancel()
        key_sync.cancel()
        await leases.stop()
        stop_ingest.set()
        await asyncio.gather(*consumers, *key_consumers)

    await server.serve_until_stopped(cleanups=[stop_consuming, bus.drain, engine.dispose, telemetry.shutdown])
    if any(c.done() and not c.cancelled() and c.exception() is not None for c in consumers):
        raise SystemExit(1)


if __name__ == "__main__":
    run_service(run)
