"""Cost ledger entry point: `python -m switchyard.ledger.main`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from switchyard.core import bus as bus_module
from switchyard.core.bus import EventBus
from switchyard.core.catalog import load_catalog
from switchyard.core.config import DEFAULT_CATALOG, BusSettings, load_settings
from switchyard.core.entry import run_service
from switchyard.core.grpc_server import GrpcServer
from switchyard.core.logging import configure_logging
from switchyard.core.migrations import require_head
from switchyard.core.telemetry import configure_telemetry
from switchyard.ledger._ingest import AttemptIngest
from switchyard.ledger._servicer import LedgerServicer
from switchyard.ledger._store import LedgerStore, make_engine
from switchyard.v1 import ledger_pb2, ledger_pb2_grpc


class LedgerSettings(BusSettings):
    database_url: str = "sqlite:///.switchyard/ledger.db"
    catalog: Path = DEFAULT_CATALOG
    consumer_name: str = "ledger-attempts"
    ingest_batch: int = 256


async def run() -> None:
    settings = load_settings(LedgerSettings)
    configure_logging("ledger", settings.log_level)
    telemetry = configure_telemetry("ledger", settings.otlp_endpoint)
    catalog = load_catalog(settings.catalog)
    engine = make_engine(settings.database_url)
    require_head(engine, settings.database_url)
    store = LedgerStore(engine)

    bus = await EventBus.connect(settings.nats_url, name="switchyard-ledger")
    await bus.ensure_stream(settings.stream_replicas)
    stop_ingest = asyncio.Event()
    ingest = asyncio.create_task(
        bus.consume(
            bus_module.SUBJECT_ATTEMPT,
            settings.consumer_name,
            AttemptIngest(bus, store, catalog),
            stop_ingest,
            batch=settings.ingest_batch,
        )
    )

    server = GrpcServer("ledger", settings.listen, settings.shutdown_grace_s)
    # A ledger that stopped ingesting must not look healthy: stop the process so it restarts.
    ingest.add_done_callback(lambda _task: server.request_stop())
    ledger_pb2_grpc.add_LedgerServicer_to_server(LedgerServicer(store), server.server)
    server.add_service(ledger_pb2.DESCRIPTOR.services_by_name["Ledger"].full_name)

    await server.start()
    server.stop_on_signals()

    async def stop_consuming() -> None:
        # Let the batch in hand commit and ack; unacked messages are redelivered anyway.
        stop_ingest.set()
        await ingest

    await server.serve_until_stopped(cleanups=[stop_consuming, bus.drain, engine.dispose, telemetry.shutdown])
    if ingest.done() and not ingest.cancelled() and ingest.exception() is not None:
        raise SystemExit(1)


if __name__ == "__main__":
    run_service(run)
