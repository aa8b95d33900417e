"""Console entry point: `python -m tierlift.console.main` serves the console alone (at /console,
with / redirected there); the gateway mounts the same application beside its OpenAI edge when it
is given a ledger address (gateway/main.py). Either way it reads through the Ledger's and the
Assessor's gRPC APIs, with each user's own key."""

from __future__ import annotations

import asyncio
import secrets
import signal
from dataclasses import dataclass

from aiohttp import web
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tierlift.console._app import PREFIX, build_console
from tierlift.console._auth import Sessions
from tierlift.console._backend import Backend
from tierlift.core.config import ENV_PREFIX, ServiceSettings, load_settings, secret
from tierlift.core.entry import StartupError, run_service
from tierlift.core.grpc_server import ClientChannel, client_channel
from tierlift.core.logging import configure_logging, get_logger
from tierlift.core.telemetry import configure_telemetry
from tierlift.core.tls import TlsFiles
from tierlift.v1 import assessor_pb2_grpc, ledger_pb2_grpc

log = get_logger(__name__)
SECRET_VARIABLE = "TIERLIFT_CONSOLE_SECRET"


class ConsoleSettings(ServiceSettings):
    ledger_addr: str = "127.0.0.1:50052"
    assessor_addr: str = ""  # "" = the Rollouts page says it has none
    http_listen: str = "127.0.0.1:8090"
    console_session_s: int = Field(default=8 * 3600, gt=0, le=7 * 86400)


class TraceLinkSettings(BaseSettings):
    """TIERLIFT_CONSOLE_TRACE_URL: a tracing UI's page of one trace, "{trace_id}" where the id goes
    (e.g. "https://jaeger.example/trace/{trace_id}"); "" = trace ids are shown without a link. Read
    by `open_console` itself, so the console alone and the gateway's mount both honour it."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    console_trace_url: str = ""

    @field_validator("console_trace_url")
    @classmethod
    def _a_trace_page(cls, value: str) -> str:
        if value and not (value.startswith(("https://", "http://")) and value.count("{trace_id}") == 1):
            raise ValueError('an http(s) URL with "{trace_id}" in it once, or ""')
        return value


@dataclass
class Console:
    app: web.Application
    channels: list[ClientChannel]

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


def open_console(ledger_addr: str, assessor_addr: str, tls: TlsFiles | None, session_s: int) -> Console:
    """The console's application and the channels it reads through (close them at shutdown).
    The secret that seals session cookies comes from TIERLIFT_CONSOLE_SECRET (or its _FILE /
    secrets dir), the same on every replica; without one a random secret is drawn, so sessions end
    with this process and no other replica opens them."""
    key = secret(SECRET_VARIABLE)
    if not key:
        hint = f"set {SECRET_VARIABLE}, the same on every replica, to keep sessions across replicas and restarts"
        log.warning("console_secret_generated", hint=hint)
        key = secrets.token_urlsafe(32)
    elif len(key) < 16:
        raise StartupError(f"{SECRET_VARIABLE}: at least 16 characters")
    trace_url = load_settings(TraceLinkSettings).console_trace_url  # checked before any channel opens
    ledger = client_channel(ledger_addr, "", tls)  # no service key: each call presents its user's
    channels = [ledger]
    assessor = None
    if assessor_addr:
        channels.append(assessor_channel := client_channel(assessor_addr, "", tls))
        assessor = assessor_pb2_grpc.AssessorStub(assessor_channel)
    backend = Backend(ledger_pb2_grpc.LedgerStub(ledger), assessor)
    return Console(build_console(backend, Sessions(key, session_s), trace_url), channels)


async def _to_console(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": f"{PREFIX}/"})


async def run() -> None:
    settings = load_settings(ConsoleSettings)
    configure_logging("console", settings.log_level)
    telemetry = configure_telemetry("console", settings.otlp_endpoint, settings.metrics_listen)
    tls = settings.tls()
    console = open_console(settings.ledger_addr, settings.assessor_addr, tls, settings.console_session_s)
    root = web.Application()
    root.router.add_get("/", _to_console)
    root.add_subapp(PREFIX, console.app)
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    host, _, port = settings.http_listen.rpartition(":")
    if not port.isdigit():
        raise StartupError(f"TIERLIFT_HTTP_LISTEN: {settings.http_listen!r} is not host:port")
    https = tls.https_context() if tls is not None else None
    await web.TCPSite(runner, host or "0.0.0.0", int(port), ssl_context=https).start()
    log.info("http_serving", listen=settings.http_listen, ledger=settings.ledger_addr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutdown_started")
    await runner.cleanup()
    await console.close()
    telemetry.shutdown()
    log.info("shutdown_finished")


if __name__ == "__main__":
    run_service(run)
