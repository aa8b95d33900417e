"""Integration fixtures: the real embedded stack (nats-server from the wheel, SQLite, the
llama.cpp local model, every service its own process) on free loopback ports."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.stack_keys import tenant_router
from tierlift.core.bus import EventBus
from tierlift.core.bus_layout import bootstrap
from tierlift.devstack import Stack, free_port, nats_server_binary, wait_for_port
from tierlift.v1 import ledger_pb2_grpc, router_pb2_grpc


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("stack")
    # routers report key use every second (default 30 s), so a test sees last_used_at soon
    # and every service serves /metrics (tests/integration/test_metrics.py)
    running = Stack(Path(state), service_extra_env={"router": {"TIERLIFT_KEY_USE_REPORT_S": "1"}}, metrics=True)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def router(stack: Stack) -> Iterator[router_pb2_grpc.RouterStub]:
    with tenant_router(stack) as channel:
        yield router_pb2_grpc.RouterStub(channel)


@pytest.fixture
def ledger(stack: Stack) -> Iterator[ledger_pb2_grpc.LedgerStub]:
    with stack.channel("ledger") as channel:
        yield ledger_pb2_grpc.LedgerStub(channel)


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(nats_server_binary()), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 10, proc, "nats-server")
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[EventBus]:
    """A connection to `nats_url` with the stream made."""
    connected = await EventBus.connect(nats_url, name="test")
    await bootstrap(connected.js)
    try:
        yield connected
    finally:
        await connected.drain()
