"""The bus as a trust boundary, attacked with each service's own NATS credentials on the real
embedded stack: no role may configure JetStream (a stream's `republish` or a mirror would carry
stored messages past its permissions), touch another's durable consumer, read subjects outside
its own, publish outside its own subjects or listen on another's inbox. After every attack,
nothing was billed to the victim, no key was minted, and the ledger still bills live traffic."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import nats
import pytest
from nats.aio.client import Client

from tests.integration.test_bus_and_ledger import attempt_event
from tests.stack_keys import tenant_router
from tierlift.core import bus as bus_module
from tierlift.core.bus import EventBus
from tierlift.core.bus_layout import BUCKETS, DURABLES, STREAM, SUBJECT_LEASE
from tierlift.core.entry import StartupError
from tierlift.core.nats_access import EVENTS, WATCHES, EventSigner, inbox_prefix, subject_matches
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, events_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

ROLES = ["router", "ledger", "assessor", "observer"]
SUBJECTS = ["tierlift.attempt.finished", "tierlift.request.completed", "tierlift.request.settled",
            "tierlift.shadow.finished", "tierlift.budget.state.victim._all.day", "tierlift.keys.state.forged",
            "tierlift.rollout.state.forged", "tierlift.quality.scored", "tierlift.audit.keys.create",
            "tierlift.feedback.given"]  # fmt: skip


class Attacker:
    """A raw NATS connection with a role's credentials that records what the server refused."""

    def __init__(self, role: str, nc: Client, violations: list[str]) -> None:
        self.role, self.nc, self.violations = role, nc, violations

    async def refused_publish(self, subject: str, data: bytes = b"x", headers: dict[str, str] | None = None) -> bool:
        self.violations.clear()
        await self.nc.publish(subject, data, headers=headers)
        await self.nc.flush()
        await asyncio.sleep(0.05)
        return any(subject.lower() in v for v in self.violations)

    async def refused_request(self, subject: str, body: dict[str, object] | None = None) -> bool:
        """True when the server refused the request (a permission violation: no answer comes) or
        JetStream answered with an error."""
        try:
            reply = await self.nc.request(subject, json.dumps(body or {}).encode(), timeout=0.3)
        except Exception:  # timed out, or no responders: the server dropped it
            return True
        return "error" in json.loads(reply.data or b"{}")

    async def refused_subscribe(self, subject: str) -> bool:
        self.violations.clear()
        sub = await self.nc.subscribe(subject)
        await self.nc.flush()
        await asyncio.sleep(0.05)
        await sub.unsubscribe()
        return any(subject.lower() in v for v in self.violations)


@pytest.fixture
async def attackers(stack: Stack) -> AsyncIterator[dict[str, Attacker]]:
    made: dict[str, Attacker] = {}
    for role in ROLES:
        violations: list[str] = []

        async def on_error(exc: Exception, seen: list[str] = violations) -> None:
            seen.append(str(exc).lower())

        nc = await nats.connect(stack.nats_url, nkeys_seed_str=stack.nats_seeds[role], error_cb=on_error,
                                inbox_prefix=inbox_prefix(role), max_reconnect_attempts=0)  # fmt: skip
        made[role] = Attacker(role, nc, violations)
    try:
        yield made
    finally:
        for attacker in made.values():
            await attacker.nc.close()


def _spend(stack: Stack, tenant: str) -> ledger_pb2.SpendReport:
    with stack.channel("ledger") as channel:
        return ledger_pb2_grpc.LedgerStub(channel).GetSpend(ledger_pb2.SpendQuery(tenant=tenant), timeout=10)


async def test_no_service_may_configure_jetstream(attackers: dict[str, Attacker], stack: Stack) -> None:
    republish = {"src": ">", "dest": "tierlift.keys.state.forged"}
    streams = [STREAM, *(f"KV_{bucket}" for bucket in BUCKETS)]
    for role, attacker in attackers.items():
        for stream in streams:
            config = {"name": stream, "subjects": ["tierlift.>"], "republish": republish}
            assert await attacker.refused_request(f"$JS.API.STREAM.UPDATE.{stream}", config), (role, stream)
            assert await attacker.refused_request(f"$JS.API.STREAM.DELETE.{stream}"), (role, stream)
            assert await attacker.refused_request(f"$JS.API.STREAM.PURGE.{stream}"), (role, stream)
        mirror = {"name": "EVIL", "mirror": {"name": STREAM}, "republish": republish}
        assert await attacker.refused_request("$JS.API.STREAM.CREATE.EVIL", mirror), role
        assert await attacker.refused_request(f"$JS.API.STREAM.MSG.GET.{STREAM}", {"seq": 1}), role  # any message
    with stack.channel("ledger") as channel:  # no key was minted
        keys = ledger_pb2_grpc.LedgerStub(channel).ListKeys(ledger_pb2.KeyQuery(), timeout=10)
    assert all(k.description == "tierlift up" for k in keys.keys)


async def test_no_service_may_touch_another_ones_durable_consumer(attackers: dict[str, Attacker], stack: Stack) -> None:
    for name, durable in DURABLES.items():
        for role, attacker in attackers.items():
            if role == durable.owner:
                continue
            where = (role, name)
            assert await attacker.refused_request(f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{name}", {"batch": 10}), where
            assert await attacker.refused_request(f"$JS.API.CONSUMER.DELETE.{STREAM}.{name}"), where
            assert await attacker.refused_request(f"$JS.API.CONSUMER.INFO.{STREAM}.{name}"), where
            assert await attacker.refused_publish(f"$JS.ACK.{STREAM}.{name}.1.1.1.0.0"), where
            config = {"stream_name": STREAM, "config": {"durable_name": name, "filter_subject": durable.subject}}
            assert await attacker.refused_request(f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{name}", config), where
    # nor re-point one through the subject its watches are created on (a create for an existing
    # name is an update): the ledger's attempts turned to budget states would bill nothing
    for name in DURABLES:
        for role, attacker in attackers.items():
            for watched in WATCHES[role]:
                wanted = {"durable_name": name, "name": name, "filter_subject": watched, "ack_policy": "explicit"}
                config = {"stream_name": STREAM, "config": wanted}
                subject = f"$JS.API.CONSUMER.CREATE.{STREAM}.{name}.{watched}"
                assert await attacker.refused_request(subject, config), (role, name, watched)
    # the owner may not delete or reconfigure its own either (the bootstrap's job)
    assert await attackers["ledger"].refused_request(f"$JS.API.CONSUMER.DELETE.{STREAM}.ledger-attempts")
    # and the ledger still bills what it is sent
    before = _spend(stack, "dev").total_attempts
    with tenant_router(stack) as channel:
        request = router_pb2.CompleteRequest(
            tenant="dev", workload="bus-trust", messages=[common_pb2.Message(role="user", content="Say hi.")],
            params=common_pb2.GenerationParams(max_tokens=4),
        )  # fmt: skip
        router_pb2_grpc.RouterStub(channel).Complete(request, timeout=120)
    for _ in range(100):
        if _spend(stack, "dev").total_attempts > before:
            break
        await asyncio.sleep(0.2)
    assert _spend(stack, "dev").total_attempts > before


async def test_a_service_reads_only_its_own_subjects(attackers: dict[str, Attacker]) -> None:
    for role, attacker in attackers.items():
        for subject in [*SUBJECTS, "tierlift.>", ">"]:
            allowed = any(subject_matches(w, subject) for w in WATCHES[role]) or subject.startswith(
                tuple(w.removesuffix(">") for w in WATCHES[role])
            )
            config = {"stream_name": STREAM, "config": {"name": "peek", "filter_subject": subject,
                                                        "deliver_subject": f"{inbox_prefix(role)}.peek"}}  # fmt: skip
            refused = await attacker.refused_request(f"$JS.API.CONSUMER.CREATE.{STREAM}.peek.{subject}", config)
            assert refused != allowed, (role, subject)
            # the legacy subject, whose filter is only in the body, is refused to every role
            assert await attacker.refused_request(f"$JS.API.CONSUMER.CREATE.{STREAM}", config), (role, subject)
        for watched in WATCHES[role]:  # an allowed subject with another filter in the body
            config = {"stream_name": STREAM, "config": {"name": "peek", "filter_subject": "tierlift.shadow.finished",
                                                        "deliver_subject": f"{inbox_prefix(role)}.peek"}}  # fmt: skip
            assert await attacker.refused_request(f"$JS.API.CONSUMER.CREATE.{STREAM}.peek.{watched}", config), role
            # nor may it have the server deliver what it may read onto an event subject
            onto = {"stream_name": STREAM, "config": {"name": "onto", "filter_subject": watched,
                                                      "deliver_subject": "tierlift.attempt.finished"}}  # fmt: skip
            assert await attacker.refused_request(f"$JS.API.CONSUMER.CREATE.{STREAM}.onto.{watched}", onto), role
        for other in [*ROLES, "bootstrap"]:  # replies to another role are not for it
            if other != role:
                assert await attacker.refused_subscribe(f"{inbox_prefix(other)}.>"), (role, other)
        assert await attacker.refused_subscribe("_INBOX.>"), role
        assert await attacker.refused_subscribe("tierlift.>"), role
    # only the assessor may read the shadow texts
    assert [r for r in ROLES if any(subject_matches(w, bus_module.SUBJECT_SHADOW) for w in WATCHES[r])] == []


async def test_a_service_publishes_and_signs_only_its_own_subjects(
    attackers: dict[str, Attacker], stack: Stack
) -> None:
    forged = attempt_event("forged.attempt.0", tokens=(4 * 10**9, 4 * 10**9))
    forged.tenant = "victim"
    data = forged.SerializeToString()
    for role, attacker in attackers.items():
        signed = EventSigner(stack.nats_seeds[role])
        for subject in SUBJECTS:
            allowed = any(subject_matches(p, subject) for p in EVENTS[role])
            refused = await attacker.refused_publish(subject, data, signed.headers(subject, data))
            assert refused != allowed, (role, subject)
    await asyncio.sleep(1.0)  # what the ledger would have ingested by now
    assert _spend(stack, "victim").total_attempts == 0


async def test_only_routers_ask_for_budget_leases_and_only_the_ledger_answers(
    attackers: dict[str, Attacker],
) -> None:
    probe = ledger_pb2.LeaseRequest(holder="probe", tenant="nobody", period="day").SerializeToString()
    reply = await attackers["router"].nc.request(SUBJECT_LEASE, probe, timeout=5)
    assert ledger_pb2.LeaseReply.FromString(reply.data).no_budget  # the ledger answered, to the router's inbox
    for role, attacker in attackers.items():
        if role != "router":
            assert await attacker.refused_publish(SUBJECT_LEASE, probe), role
        if role != "ledger":  # nobody else may answer in the ledger's place
            assert await attacker.refused_subscribe(SUBJECT_LEASE), role
    # the ledger answers the inbox of a request it received, and no other
    assert await attackers["ledger"].refused_publish(f"{inbox_prefix('router')}.forged")


async def test_a_state_no_trusted_producer_signed_for_its_subject_is_not_followed(stack: Stack) -> None:
    """The router's key book follows key states only from the ledger: a key state the router's
    own credentials could put on the stream (they cannot: the server refuses) would be dropped."""
    router_user = await EventBus.connect(stack.nats_url, "router-as-attacker", seed=stack.nats_seeds["router"],
                                         role="router")  # fmt: skip
    try:
        forged = events_pb2.KeyState(key_id="forged", secret_sha256="0" * 64, role="admin")
        with pytest.raises(Exception):  # noqa: B017 - nats-py raises a timeout for the refused publish
            await asyncio.wait_for(router_user.publish("tierlift.keys.state.forged", forged, "forged-key"), 3)
    finally:
        await router_user.drain()
    request = router_pb2.CompleteRequest(tenant="dev", workload="x", messages=[common_pb2.Message(content="hi")])
    with stack.channel("router", key="tl_forged.secret") as channel, pytest.raises(grpc.RpcError) as refused:
        router_pb2_grpc.RouterStub(channel).Plan(request, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_service_without_its_nats_user_cannot_connect(stack: Stack) -> None:
    async def anonymous() -> None:
        await EventBus.connect(stack.nats_url, "anonymous")

    with pytest.raises(StartupError, match="refused this service's credentials"):
        asyncio.run(asyncio.wait_for(anonymous(), 10))


def test_state_files_and_the_ledger_are_private(stack: Stack) -> None:
    for name in ("", "ledger.db", "keys.json", "nats-users.json", "nats.conf", "stack.json", "logs/ledger.log"):
        assert (stack.state_dir / name).stat().st_mode & 0o077 == 0, name or "the state folder"


def test_the_embedded_nats_server_runs_one_go_scheduler_thread(stack: Stack) -> None:
    """devstack's nats-server shares the machine's cores with the services (GOMAXPROCS=1)."""
    environ = Path(f"/proc/{stack.procs['nats'].pid}/environ").read_bytes().split(b"\0")
    expected = os.environ.get("GOMAXPROCS", "1").encode()
    assert b"GOMAXPROCS=" + expected in environ
