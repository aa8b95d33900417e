"""Assessor entry point: `python -m tierlift.assessor.main`. No RPCs of its own: it works from
JetStream and serves gRPC health for its probes."""

from __future__ import annotations

import asyncio

from pydantic import Field

from tierlift.assessor._drift import DriftWatch
from tierlift.assessor._llm_judge import LlmJudge
from tierlift.assessor._service import Assessor
from tierlift.core import bus as bus_module
from tierlift.core.config import BusSettings, load_settings, secret
from tierlift.core.entry import run_service
from tierlift.core.grpc_server import GrpcServer, client_channel
from tierlift.core.identity import Authenticate, KeyBook
from tierlift.core.logging import configure_logging, get_logger
from tierlift.core.telemetry import configure_telemetry
from tierlift.v1 import router_pb2_grpc

log = get_logger(__name__)


class AssessorSettings(BusSettings):
    consumer_name: str = "assessor-shadows"
    # drift: judged requests per rolling window, the agreement floor, the relative fall from baseline
    drift_window: int = Field(default=50, ge=5, le=10_000)
    agreement_floor: float = Field(default=0.6, ge=0, le=1)
    max_drop: float = Field(default=0.05, gt=0, lt=1)
    # the router the LLM judge calls ("" = no LLM judging)
    router_addr: str = ""
    judge_timeout_s: float = Field(default=60.0, gt=0)


async def run() -> None:
    settings = load_settings(AssessorSettings)
    configure_logging("assessor", settings.log_level)
    telemetry = configure_telemetry("assessor", settings.otlp_endpoint)
    bus = await settings.connect_bus("tierlift-assessor")
    await bus.wait_for_stream()
    if bus.producers is None:
        log.warning("event_producers_not_checked", hint="set TIERLIFT_TRUSTED_PRODUCERS to the routers' nkeys")
    # LLM judges call the router with this service's key (policy judge method "llm")
    key = secret("TIERLIFT_SERVICE_KEY") or secret("TIERLIFT_ASSESSOR_KEY")
    channel = client_channel(settings.router_addr, key, settings.tls()) if settings.router_addr else None
    llm = LlmJudge(router_pb2_grpc.RouterStub(channel), settings.judge_timeout_s) if channel else None
    assessor = Assessor(bus, DriftWatch(settings.drift_window, settings.agreement_floor, settings.max_drop), llm)
    stop = asyncio.Event()
    consumer = asyncio.create_task(
        bus.consume(bus_module.SUBJECT_SHADOW, settings.consumer_name, assessor, stop, batch=64)
    )
    # health only: nobody calls the assessor (Authenticate refuses any other method)
    server = GrpcServer.for_settings("assessor", settings, Authenticate(KeyBook(), {}))
    consumer.add_done_callback(lambda _task: server.request_stop())
    await server.start()
    server.stop_on_signals()

    async def stop_consuming() -> None:
        stop.set()
        await consumer

    cleanups = [stop_consuming, *([channel.close] if channel else []), bus.drain, telemetry.shutdown]
    await server.serve_until_stopped(cleanups=cleanups)


if __name__ == "__main__":
    run_service(run)
