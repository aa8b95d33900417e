"""Gateway entry point: `python -m tierlift.gateway.main`. An HTTP server (aiohttp) in front of
the router; it serves until SIGTERM, then stops accepting and finishes the requests in hand."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from aiohttp import web
from pydantic import Field

from tierlift.console import PREFIX as CONSOLE_PREFIX
from tierlift.console.main import open_console
from tierlift.core import local_channel
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG, ServiceSettings, load_settings
from tierlift.core.entry import StartupError, on_stop_signals, run_service
from tierlift.core.grpc_server import CHANNEL_OPTIONS
from tierlift.core.logging import configure_logging, get_logger
from tierlift.core.telemetry import configure_telemetry
from tierlift.gateway._app import build_app
from tierlift.v1 import router_pb2_grpc

log = get_logger(__name__)


class GatewaySettings(ServiceSettings):
    router_addr: str = "127.0.0.1:50051"
    # HTTP listen address, host:port
    http_listen: str = "127.0.0.1:8080"
    request_timeout_s: float = Field(default=120.0, gt=0)
    catalog: Path = DEFAULT_CATALOG  # the models a caller may pin by name
    # the web console at /console, when the ledger's address is given (tierlift/console)
    ledger_addr: str = ""
    assessor_addr: str = ""  # the console's Rollouts page; "" = none shown
    console_session_s: int = Field(default=8 * 3600, gt=0, le=7 * 86400)


async def run() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level)
    telemetry = configure_telemetry("gateway", settings.otlp_endpoint, settings.metrics_listen)
    # Uninstrumented on purpose: the gateway translates a protocol and passes the caller's
    # traceparent on (see _app._metadata), so the router's span joins the caller's trace; client
    # interceptors here cost ~0.45 ms per call (BENCH=gateway) for a span that adds nothing.
    tls = settings.tls()
    channel: grpc.aio.Channel | local_channel.LocalChannel
    if (router := local_channel.hosted(settings.router_addr)) is not None:
        channel = router.channel()  # `tierlift serve`: the router in this process, called directly
    elif tls is None:
        channel = grpc.aio.insecure_channel(settings.router_addr, options=CHANNEL_OPTIONS)
    else:
        channel = grpc.aio.secure_channel(settings.router_addr, tls.channel_credentials(), options=CHANNEL_OPTIONS)
    catalog = load_catalog(settings.catalog)
    app = build_app(router_pb2_grpc.RouterStub(channel), settings.request_timeout_s, [m.id for m in catalog.models])
    console = None
    if settings.ledger_addr:  # beside the OpenAI edge, on its port: one listener to expose
        console = open_console(settings.ledger_addr, settings.assessor_addr, tls, settings.console_session_s)
        app.add_subapp(CONSOLE_PREFIX, console.app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = settings.http_listen.rpartition(":")
    if not port.isdigit():
        raise StartupError(f"TIERLIFT_HTTP_LISTEN: {settings.http_listen!r} is not host:port")
    https = tls.https_context() if tls is not None else None  # the same certificate, for HTTPS
    await web.TCPSite(runner, host or "0.0.0.0", int(port), ssl_context=https).start()
    log.info("http_serving", listen=settings.http_listen, router=settings.router_addr, console=console is not None)
    stop = asyncio.Event()
    on_stop_signals(stop.set)
    await stop.wait()
    log.info("shutdown_started")
    await runner.cleanup()  # stops accepting, waits for the requests in hand
    await channel.close()
    if console is not None:
        await console.close()
    telemetry.shutdown()
    log.info("shutdown_finished")


if __name__ == "__main__":
    run_service(run)
