"""Assessor entry point: `python -m tierlift.assessor.main`. No RPCs of its own: it works from
JetStream and serves gRPC health for its probes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import Field

from tierlift.assessor._drift import DriftWatch
from tierlift.assessor._llm_judge import LlmJudge
from tierlift.assessor._rollouts import RolloutController
from tierlift.assessor._service import Assessor
from tierlift.assessor._servicer import AssessorServicer
from tierlift.assessor._suite import JetStreamBaselines, SuiteRunner
from tierlift.core import bus as bus_module
from tierlift.core.bus_layout import durable_for
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG, BusSettings, load_settings, secret
from tierlift.core.entry import run_service
from tierlift.core.grpc_server import GrpcServer, client_channel
from tierlift.core.identity import Authenticate, KeyBook
from tierlift.core.logging import configure_logging, get_logger
from tierlift.core.telemetry import configure_telemetry
from tierlift.v1 import assessor_pb2, assessor_pb2_grpc, ledger_pb2_grpc, router_pb2_grpc

log = get_logger(__name__)
DEFAULT_SUITES = Path(__file__).resolve().parent.parent / "suites"


class AssessorSettings(BusSettings):
    # drift: judged requests per rolling window, the agreement floor, the relative fall from baseline
    drift_window: int = Field(default=50, ge=5, le=10_000)
    agreement_floor: float = Field(default=0.6, ge=0, le=1)
    max_drop: float = Field(default=0.05, gt=0, lt=1)
    # the router the LLM judge calls ("" = no LLM judging)
    router_addr: str = ""
    judge_timeout_s: float = Field(default=60.0, gt=0)
    # golden sets: <suites_dir>/<workload>.jsonl, run on these model paths every suite_every_s (0 = on demand)
    suites_dir: Path = DEFAULT_SUITES
    suite_models: str = ""
    suite_every_s: float = Field(default=0.0, ge=0)
    suite_tenant: str = Field(default="tierlift-quality", pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    # rollouts: the ledger the controller reads each arm's evidence from ("" = no rollouts), how
    # often it judges each running rollout, and the catalog that names valid models
    ledger_addr: str = ""
    rollout_check_s: float = Field(default=10.0, gt=0)
    catalog: Path = DEFAULT_CATALOG


async def run_suites_forever(runner: SuiteRunner, models: list[str], every_s: float) -> None:
    """Every golden set in the folder, on every configured path, every `every_s` seconds."""
    while True:
        await asyncio.sleep(every_s)
        for path in sorted(runner.suites_dir.glob("*.jsonl")):
            try:
                report = await runner.run(path.stem, models)
                log.info("suite_run", workload=path.stem, scores={p.model: round(p.score, 3) for p in report.paths})
            except Exception:
                log.exception("suite_run_failed", workload=path.stem)


async def run() -> None:
    settings = load_settings(AssessorSettings)
    configure_logging("assessor", settings.log_level)
    telemetry = configure_telemetry("assessor", settings.otlp_endpoint, settings.metrics_listen)
    bus = await settings.connect_bus("assessor")
    await bus.wait_for_stream()
    if bus.producers is None:
        log.warning("event_producers_not_checked", hint="set TIERLIFT_TRUSTED_PRODUCERS to the routers' nkeys")
    # LLM judges and golden sets call the router with this service's key
    key = secret("TIERLIFT_SERVICE_KEY") or secret("TIERLIFT_ASSESSOR_KEY")
    channel = client_channel(settings.router_addr, key, settings.tls()) if settings.router_addr else None
    router = router_pb2_grpc.RouterStub(channel) if channel else None
    llm = LlmJudge(router, settings.judge_timeout_s) if router else None
    drift = DriftWatch(settings.drift_window, settings.agreement_floor, settings.max_drop)
    assessor = Assessor(bus, drift, llm, settings.nats_seed())
    keys = KeyBook()
    await keys.follow(bus)  # admins run golden sets on demand (tierlift suite run)
    baselines = await JetStreamBaselines.open(bus.js, bus.signer)
    stop = asyncio.Event()
    shadows = durable_for(bus_module.SUBJECT_SHADOW, "assessor")
    consumer = asyncio.create_task(bus.consume(bus_module.SUBJECT_SHADOW, shadows, assessor, stop, batch=64))
    server = GrpcServer.for_settings("assessor", settings, Authenticate(keys, {"*": frozenset({"admin"})}))
    consumer.add_done_callback(lambda _task: server.request_stop())
    models = [m.strip() for m in settings.suite_models.split(",") if m.strip()]
    background: list[asyncio.Task[None]] = []
    runner = None
    if router is not None:
        runner = SuiteRunner(router, bus.publish, baselines, settings.suites_dir, settings.suite_tenant,
                             settings.max_drop, settings.judge_timeout_s)  # fmt: skip
        if settings.suite_every_s and models:
            background.append(asyncio.create_task(run_suites_forever(runner, models, settings.suite_every_s)))
    rollouts, ledger_channel = None, None
    if settings.ledger_addr:
        ledger_channel = client_channel(settings.ledger_addr, key, settings.tls())
        rollouts = RolloutController(bus, ledger_pb2_grpc.LedgerStub(ledger_channel), load_catalog(settings.catalog))
        await rollouts.follow()  # every rollout's state, before the first admin call or tick
        background.append(asyncio.create_task(rollouts.run_forever(settings.rollout_check_s)))
    if runner is not None or rollouts is not None:
        assessor_pb2_grpc.add_AssessorServicer_to_server(AssessorServicer(runner, models, rollouts), server.server)
        server.add_service(assessor_pb2.DESCRIPTOR.services_by_name["Assessor"].full_name)
    await server.start()
    server.stop_on_signals()

    async def stop_consuming() -> None:
        for task in background:
            task.cancel()
        stop.set()
        await consumer

    channels = [c.close for c in (channel, ledger_channel) if c is not None]
    cleanups = [stop_consuming, *channels, bus.drain, telemetry.shutdown]
    await server.serve_until_stopped(cleanups=cleanups)


if __name__ == "__main__":
    run_service(run)
