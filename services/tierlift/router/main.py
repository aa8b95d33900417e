"""Router service entry point: `python -m tierlift.router.main`."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from pathlib import Path

from pydantic import Field, field_validator

from tierlift.core import bus as bus_module
from tierlift.core import local_channel
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG, BusSettings, load_settings, secret
from tierlift.core.entry import StartupError, run_service
from tierlift.core.grpc_server import GrpcServer, client_channel
from tierlift.core.identity import ASSESSOR, Authenticate, KeyBook
from tierlift.core.logging import configure_logging, get_logger
from tierlift.core.telemetry import configure_telemetry
from tierlift.router._budgets import BudgetBook
from tierlift.router._deps import RouterDeps
from tierlift.router._idempotency import JetStreamKeys, SingleFlight
from tierlift.router._leases import DEFAULT_IDLE_S, BudgetLeases, nats_lease_call
from tierlift.router._policy_source import DEFAULT_POLICY, PolicyError, PolicySource
from tierlift.router._rollouts import RolloutBook
from tierlift.router._servicer import RouterServicer
from tierlift.router._shadow import JetStreamSpend, Shadows
from tierlift.v1 import adapter_pb2_grpc, classifier_pb2_grpc, events_pb2, router_pb2, router_pb2_grpc

log = get_logger(__name__)
# at shutdown, the most the work that outlived its callers (shadow runs, late events) may take
BACKGROUND_GRACE_S = 10.0
_ADAPTER_ENTRY = re.compile(r"([a-z0-9][a-z0-9-]*)=([^\s,=]+:\d+)")


class RouterSettings(BusSettings):
    catalog: Path = DEFAULT_CATALOG
    classifier_addr: str = "127.0.0.1:50052"
    # Deployed adapters: "name=host:port,name=host:port". Models whose adapter is missing are
    # left off every ladder (Plan says so).
    adapters: str = ""
    # Routing policy YAML (data class -> tiers, thresholds per workload, confidence model);
    # re-read every policy_reload_s seconds, so a ConfigMap change takes effect without a restart.
    policy: Path = DEFAULT_POLICY
    policy_reload_s: float = Field(default=2.0, gt=0)
    attempt_timeout_s: float = Field(default=60.0, gt=0)
    # a stream the caller left is read on this long for the provider's usage, which replaces the
    # estimate it was billed at (router/_stream_usage.py); 0: never
    late_usage_s: float = Field(default=5.0, ge=0, le=600)
    classifier_timeout_s: float = Field(default=2.0, gt=0)
    # labels of recently classified requests kept here, so a repeated prompt skips the call
    # (0 = none); the time-to-live bounds how long a new classifier version waits behind them
    classification_cache_size: int = Field(default=4096, ge=0)
    classification_ttl_s: float = Field(default=60.0, ge=0)
    # per adapter: open after this many consecutive faults, probe again after the cooldown
    circuit_threshold: int = Field(default=5, ge=1)
    circuit_cooldown_s: float = Field(default=10.0, gt=0)
    # how long an idempotency key's answer is kept for replay
    # how often the keys used since the last report are sent to the ledger (last_used_at)
    key_use_report_s: float = Field(default=30.0, gt=0)
    # budget leases (router/_leases.py): kept alive and idle ones given back this often; one
    # unused this long goes back to the ledger; the ledger's answer is awaited this long
    lease_tend_s: float = Field(default=5.0, gt=0)
    lease_idle_s: float = Field(default=DEFAULT_IDLE_S, gt=0)
    lease_timeout_s: float = Field(default=2.0, gt=0)

    @field_validator("adapters")
    @classmethod
    def _adapter_list(cls, value: str) -> str:
        for entry in filter(None, (e.strip() for e in value.split(","))):
            if not _ADAPTER_ENTRY.fullmatch(entry):
                raise ValueError(f"{entry!r} is not of the form name=host:port")
        return value

    def adapter_addresses(self) -> dict[str, str]:
        pairs = (e.strip().split("=", 1) for e in self.adapters.split(",") if e.strip())
        return {name: addr for name, addr in pairs}


async def report_key_use_once(keys: KeyBook, bus: bus_module.EventBus) -> None:
    if (used := keys.take_used()) is not None:
        try:
            await bus.publish(bus_module.SUBJECT_KEYS_USED, used, used.event_id)
        except Exception as exc:  # a lost report only makes last_used_at staler
            log.warning("key_use_report_failed", error=repr(exc), keys=len(used.last_used))


async def report_key_use(keys: KeyBook, bus: bus_module.EventBus, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        await report_key_use_once(keys, bus)


async def run() -> None:
    settings = load_settings(RouterSettings)
    configure_logging("router", settings.log_level)
    telemetry = configure_telemetry("router", settings.otlp_endpoint, settings.metrics_listen)
    catalog = load_catalog(settings.catalog)
    try:
        policy = PolicySource.from_file(settings.policy)
    except PolicyError as exc:
        raise StartupError(f"TIERLIFT_POLICY: {exc}") from None

    bus = await settings.connect_bus("router")
    await bus.wait_for_stream()
    # what this router presents to the classifier and the adapters
    service_key = secret("TIERLIFT_SERVICE_KEY") or secret("TIERLIFT_ROUTER_KEY")
    tls = settings.tls()
    channels = {"classifier": client_channel(settings.classifier_addr, service_key, tls)}
    channels |= {name: client_channel(addr, service_key, tls) for name, addr in settings.adapter_addresses().items()}
    keys = KeyBook()
    keys.trust_certificates(settings.tls_identities)
    for sha256 in settings.trusted_assessor_hashes():  # the assessor's LLM-judge calls
        keys.trust_service(sha256, ASSESSOR)
    await keys.follow(bus)  # every API key's state, from the ledger, before the first call
    budgets = BudgetBook()
    await bus.watch_latest(f"{bus_module.SUBJECT_BUDGET}.>", budgets.on_message)
    rollouts = RolloutBook()
    await bus.watch_latest(f"{bus_module.SUBJECT_ROLLOUT}.>", rollouts.on_message)
    idempotency_keys = await JetStreamKeys.open(bus.js, bus.signer)
    leases = BudgetLeases(nats_lease_call(bus.nc, settings.lease_timeout_s), idle_s=settings.lease_idle_s)
    adapters = {n: adapter_pb2_grpc.ModelAdapterStub(channels[n]) for n in settings.adapter_addresses()}
    deps = RouterDeps(
        classifier=classifier_pb2_grpc.ClassifierStub(channels["classifier"]),
        adapters=adapters,
        catalog=catalog,
        publisher=bus,
        policy=policy,
        budgets=budgets,
        rollouts=rollouts,
        leases=leases,
        attempt_timeout_s=settings.attempt_timeout_s,
        late_usage_s=settings.late_usage_s,
        classifier_timeout_s=settings.classifier_timeout_s,
        classification_cache_size=settings.classification_cache_size,
        classification_ttl_s=settings.classification_ttl_s,
        circuit_threshold=settings.circuit_threshold,
        circuit_cooldown_s=settings.circuit_cooldown_s,
        idempotency=SingleFlight(idempotency_keys, lease_s=settings.attempt_timeout_s * 4),
        shadows=Shadows(
            catalog,
            adapters,
            bus,
            await JetStreamSpend.open(bus.js, bus.signer),
            timeout_s=settings.attempt_timeout_s,
            seal_to=settings.assessor_nkey(),
        ),
    )

    auth = Authenticate(keys, {"*": frozenset({"app", "admin", ASSESSOR})})
    server = GrpcServer.for_settings("router", settings, auth)
    servicer = RouterServicer(deps)
    router_pb2_grpc.add_RouterServicer_to_server(servicer, server.server)
    # `tierlift serve`: the gateway in this process calls the same servicer, admitted alike
    local_channel.offer(settings.listen, "router", auth, router_pb2_grpc.add_RouterServicer_to_server, servicer)
    server.add_service(router_pb2.DESCRIPTOR.services_by_name["Router"].full_name)

    await server.start()
    server.stop_on_signals()

    async def audit_policy(previous: str, version: str) -> None:
        event = events_pb2.AuditEvent(
            event_id=f"audit.policy.{uuid.uuid4()}", actor=f"router:{socket.gethostname()}",
            action="policy.applied" if version else "policy.refused", target=version or previous,
            detail=f"from {previous}" if version else f"a new file did not validate; {previous} stays in force",
        )  # fmt: skip
        event.occurred_at.GetCurrentTime()
        await bus.publish(f"{bus_module.SUBJECT_AUDIT}.{event.action}", event, event.event_id)

    watcher = asyncio.create_task(policy.watch(settings.policy_reload_s, audit_policy))
    reporter = asyncio.create_task(report_key_use(keys, bus, settings.key_use_report_s))
    tending = asyncio.create_task(leases.tend_forever(settings.lease_tend_s))

    async def stop_watching() -> None:
        watcher.cancel()
        reporter.cancel()
        tending.cancel()
        await report_key_use_once(keys, bus)
        await leases.give_back_all()  # the headroom this router held goes back to the other routers

    async def finish_background() -> None:
        await servicer.ladder.finish_background(min(settings.shutdown_grace_s, BACKGROUND_GRACE_S))

    close_channels = [ch.close for ch in channels.values()]
    await server.serve_until_stopped(
        cleanups=[finish_background, stop_watching, *close_channels, bus.drain, telemetry.shutdown]
    )


if __name__ == "__main__":
    run_service(run)
