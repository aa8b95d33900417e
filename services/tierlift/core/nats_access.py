"""Who may do what on NATS, and how services prove who they are there.

Each service connects as its own NATS user, identified by an nkey (an Ed25519 key pair: the
server stores only public keys, the seed stays in the service's Secret). Its permissions
(`PERMISSIONS`, built from `EVENTS`, `WATCHES` and core/bus_layout.py) are least: it publishes
only its own events, reads only its own durables and watched subjects, uses only the JetStream
API subjects of its own consumers and buckets (fetch, ack, info; never create, update or
delete), and receives replies under its own inbox prefix. Only the bootstrap identity configures
JetStream.

The same seed signs every event a service publishes (`Tierlift-Producer`, `Tierlift-Signature`
headers), over the subject and the payload, and a consumer accepts a signature only for the
subjects its producer's role may publish (`ProducerCheck`): an event that reached the stream
some other way (a server without these permissions, a message carried onto another subject) is
refused, and dead-lettered with the reason.

`server_authorization` renders the nats-server `authorization` block from `PERMISSIONS`; the
embedded stack writes it, and the chart renders the same from helm/tierlift/files/nats-permissions.json
(kept equal to `PERMISSIONS` by tests/unit/test_nats_access.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nacl.exceptions
import nacl.signing
import nkeys

from tierlift.core.bus_layout import BUCKETS, DURABLES, SERVICES, STREAM
from tierlift.core.logging import get_logger

log = get_logger(__name__)

PRODUCER_HEADER = "Tierlift-Producer"
SIGNATURE_HEADER = "Tierlift-Signature"

# What each role may read through a short-lived consumer of its own (latest states, a rollout's
# history): the filter is part of the API subject the consumer is created on
# (`$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`), and the server refuses a request whose
# body asks for another filter, so a role reads exactly these subjects and its durables'.
# Prompt and answer texts travel only on tierlift.shadow.finished: the assessor's alone.
WATCHES: dict[str, list[str]] = {
    "router": ["tierlift.budget.state.>", "tierlift.rollout.state.>", "tierlift.keys.state.>"],
    "ledger": [],
    "assessor": ["tierlift.rollout.state.>", "tierlift.keys.state.>"],
    # dashboards, a debugging session: every subject but the shadow texts (and their dead letters)
    "observer": ["tierlift.request.>", "tierlift.attempt.>", "tierlift.budget.>", "tierlift.keys.>",
                 "tierlift.quality.>", "tierlift.rollout.>", "tierlift.audit.>", "tierlift.feedback.>"],
}  # fmt: skip

# What each role may publish as events (and sign: a consumer refuses an event signed by a role
# for a subject outside its list, whatever the server let through).
EVENTS: dict[str, list[str]] = {
    "router": ["tierlift.request.>", "tierlift.attempt.>", "tierlift.shadow.>", "tierlift.feedback.>",
               "tierlift.audit.policy.>", "tierlift.keys.used"],
    "ledger": ["tierlift.budget.>", "tierlift.keys.state.>", "tierlift.audit.>", "tierlift.deadletter.>"],
    "assessor": ["tierlift.quality.>", "tierlift.rollout.state.>", "tierlift.audit.rollout.>",
                 "tierlift.deadletter.tierlift.shadow.>"],
    "observer": [],
}  # fmt: skip

BOOTSTRAP = "bootstrap"  # creates and configures the stream, buckets and durables; publishes no event


def inbox_prefix(role: str) -> str:
    """Replies to a role (JetStream API answers, fetched messages, watched states) arrive under
    its own prefix, which no other role may subscribe to."""
    return f"_INBOX_{role}"


def _durables(role: str) -> list[str]:
    """Fetch from, ack on and look up the durable consumers the bootstrap made for `role`."""
    names = [name for name, durable in DURABLES.items() if durable.owner == role]
    return [subject for name in names for subject in (
        f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{name}", f"$JS.API.CONSUMER.INFO.{STREAM}.{name}",
        f"$JS.ACK.{STREAM}.{name}.>",
    )]  # fmt: skip


def _buckets(role: str) -> list[str]:
    """Read and write the key-value buckets of `role`: never create, update or delete one."""
    names = [name for name, bucket in BUCKETS.items() if bucket.owner == role]
    return [subject for name in names for subject in (
        f"$JS.API.STREAM.INFO.KV_{name}", f"$JS.API.STREAM.MSG.GET.KV_{name}",
        f"$JS.API.DIRECT.GET.KV_{name}.>", f"$KV.{name}.>",
    )]  # fmt: skip


def _watches(role: str) -> list[str]:
    creates = [f"$JS.API.CONSUMER.CREATE.{STREAM}.*.{subject}" for subject in WATCHES[role]]
    return creates


def _durable_configs() -> list[str]:
    """A watch's create subject names its consumer, and a create request for an existing name is
    an update (nats-server 2.10+): without these, a role could re-point a durable, e.g. the
    ledger's attempts, at a subject it may watch, and billing would stop. Denied to every role."""
    return [f"$JS.API.CONSUMER.CREATE.{STREAM}.{name}.>" for name in DURABLES]


def _permissions(role: str) -> dict[str, Any]:
    """A role's publish and subscribe permissions. A role that answers a request subject
    (bus_layout.SERVICES) subscribes to it and may reply to the inbox of each request it got
    (`allow_responses`: one reply each), and to no other inbox; a client role may publish the
    request and gets the reply under its own inbox prefix."""
    asks = [subject for subject, service in SERVICES.items() if role in service.clients]
    serves = [subject for subject, service in SERVICES.items() if service.server == role]
    publish = [*EVENTS[role], f"$JS.API.STREAM.INFO.{STREAM}", *_durables(role), *_watches(role), *_buckets(role)]
    permissions: dict[str, Any] = {
        "publish": {"allow": [*publish, *asks], "deny": _durable_configs()},
        "subscribe": {"allow": [f"{inbox_prefix(role)}.>", *serves]},
    }
    if serves:
        permissions["allow_responses"] = True
    return permissions


PERMISSIONS: dict[str, dict[str, Any]] = {role: _permissions(role) for role in EVENTS} | {
    BOOTSTRAP: {"publish": {"allow": ["$JS.API.>"]}, "subscribe": {"allow": [f"{inbox_prefix(BOOTSTRAP)}.>"]}},
}


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    wanted, given = pattern.split("."), subject.split(".")
    for i, token in enumerate(wanted):
        if token == ">":
            return len(given) > i
        if i >= len(given) or (token != "*" and token != given[i]):
            return False
    return len(given) == len(wanted)


def new_seed() -> str:
    """A fresh user seed ("SU..."), as `nsc` or `nk -gen user` would make."""
    return nkeys.encode_seed(os.urandom(32), prefix=nkeys.PREFIX_BYTE_USER).decode()


def public_key(seed: str) -> str:
    return nkeys.from_seed(seed.encode()).public_key.decode()


def server_authorization(users: Mapping[str, str]) -> str:
    """The nats-server `authorization { users = [...] }` block for {nkey public key: role}
    (the server's config format takes JSON maps)."""
    entries = [f"    {{ nkey: {nkey}, permissions: {json.dumps(PERMISSIONS[role])} }}" for nkey, role in users.items()]
    return "authorization {\n  users = [\n" + "\n".join(entries) + "\n  ]\n}\n"


def verify_key(public: str) -> nacl.signing.VerifyKey:
    """The Ed25519 key behind a public user nkey ("U...", base32 of prefix + key + CRC16)."""
    try:
        raw = base64.b32decode(public + "=" * (-len(public) % 8))
    except binascii.Error:
        raise ValueError(f"{public[:60]!r} is not base32") from None
    if len(raw) != 35 or raw[0] != nkeys.PREFIX_BYTE_USER:
        raise ValueError(f"{public[:60]!r} is not a public user nkey (U...)")
    if nkeys.crc16(bytearray(raw[:-2])).to_bytes(2, "little") != raw[-2:]:
        raise ValueError(f"{public[:60]!r} fails its checksum")
    return nacl.signing.VerifyKey(raw[1:-2])


_VALUE_MARK = b"tl1:"


def _signed_bytes(subject: str, data: bytes) -> bytes:
    return subject.encode() + b"\n" + data


class EventSigner:
    """Signs what a service publishes with its nkey seed."""

    def __init__(self, seed: str) -> None:
        self._pair = nkeys.from_seed(seed.encode())
        self.public_key = self._pair.public_key.decode()
        self._verify = verify_key(self.public_key)

    def headers(self, subject: str, data: bytes) -> dict[str, str]:
        signature = self._pair.sign(_signed_bytes(subject, data))
        return {PRODUCER_HEADER: self.public_key, SIGNATURE_HEADER: base64.b64encode(signature).decode()}

    def seal_value(self, name: str, value: bytes) -> bytes:
        """A value for one of this service's own buckets: the signature over its name and value,
        then the value (core/signed_bucket.py)."""
        return _VALUE_MARK + self._pair.sign(_signed_bytes(name, value)) + value

    def open_value(self, name: str, stored: bytes) -> bytes | None:
        """The value `seal_value` stored under `name`, or None when this service did not sign it."""
        if not stored.startswith(_VALUE_MARK):
            return None
        signature, value = stored[len(_VALUE_MARK) : len(_VALUE_MARK) + 64], stored[len(_VALUE_MARK) + 64 :]
        try:
            self._verify.verify(_signed_bytes(name, value), signature)
        except nacl.exceptions.BadSignatureError:
            return None
        return value


# subject, payload, headers, and when the stream stored it (seconds since the epoch; None: unknown)
Signed = tuple[str, bytes, Mapping[str, str] | None, float | None]
HELPER_RETRY_S = 60.0


@dataclass(frozen=True)
class TrustedProducer:
    """A producer's public nkey, the role whose subjects it may sign, and, once its key is
    rotated out, when it retired: events the stream stored before then are still taken (a
    backlog signed before a rotation is billed), later ones are refused."""

    role: str
    key: str
    retired_at: float | None = None


def trusted_keys(value: str) -> list[TrustedProducer]:
    """TIERLIFT_TRUSTED_PRODUCERS: comma-separated `role=UKEY` or, for a key rotated out,
    `role=UKEY@2026-12-07T10:00:00Z`; each checked now (a typo fails at start)."""
    producers = []
    for entry in (e.strip() for e in value.split(",") if e.strip()):
        role, _, rest = entry.partition("=")
        if role not in EVENTS or not rest:
            raise ValueError(f"{entry[:60]!r} is not role=UKEY (a role of {', '.join(sorted(EVENTS))})")
        key, _, retired = rest.partition("@")
        verify_key(key)
        try:
            retired_at = datetime.fromisoformat(retired).timestamp() if retired else None
        except ValueError:
            raise ValueError(f"{retired[:40]!r}: a retirement time is ISO 8601, e.g. 2026-12-07T10:00:00Z") from None
        producers.append(TrustedProducer(role, key, retired_at))
    return producers


class ProducerCheck:
    """Which producers' events a consumer accepts: those signed by a trusted nkey, for a subject
    its role may publish (EVENTS), stored while the key was not retired.

    `problems` checks a batch of `helper_from` events or more in a helper process (one per
    ProducerCheck, its trusted keys given once): an Ed25519 verification costs ~45 µs of CPU,
    which on the event loop took a third of the ledger's ingest and ran on one core; in a thread
    it is slower still, as the thread waits for the GIL after every event while the loop is busy
    (5 ms a wait, the switch interval). The first such batch starts the helper (~1 s: `spawn`
    imports the service's modules), unless `start_helper` did, and is checked here meanwhile, as
    is every batch while it starts, so a backlog never waits for it. The helper ends with its
    parent, however the parent ends (a SIGKILL included)."""

    def __init__(self, trusted: Iterable[TrustedProducer], helper_from: int = 64) -> None:
        self._trusted = list(trusted)
        self._producers = {p.key: (p, verify_key(p.key)) for p in self._trusted}
        self.helper_from = helper_from
        self._helper: ProcessPoolExecutor | None = None
        self._helper_started: Future[list[str]] | None = None
        self._helper_again_at = 0.0

    async def problems(self, events: Sequence[Signed]) -> list[str]:
        """`problem` of each event, in order."""
        if len(events) < self.helper_from or not self._helper_ready():
            return [self.problem(*event) for event in events]
        assert self._helper is not None
        wanted = (PRODUCER_HEADER, SIGNATURE_HEADER)
        sent: list[Signed] = [
            (subject, data, {k: headers[k] for k in wanted if k in headers} if headers else None, stored_at)
            for subject, data, headers, stored_at in events
        ]
        try:
            return await asyncio.get_running_loop().run_in_executor(self._helper, _problems_in_helper, sent)
        except BrokenProcessPool:  # the helper died: check here, try another in a minute
            self._helper_lost()
            return [self.problem(*event) for event in events]

    def start_helper(self) -> None:
        """Start the helper now rather than on the first large batch; it takes batches once it
        runs. For a consumer whose backlogs come right after it starts (the ledger after a deploy
        or an outage), which otherwise checks its first second of backlog here."""
        self._helper_ready()

    def _helper_ready(self) -> bool:
        """Whether the helper can take a batch; starts it when there is none."""
        if time.monotonic() < self._helper_again_at:
            return False
        if self._helper is None:
            spawn = multiprocessing.get_context("spawn")  # never fork a process with gRPC and NATS threads
            self._helper = ProcessPoolExecutor(1, spawn, _start_helper, (self._trusted, os.getpid()))
            self._helper_started = self._helper.submit(_problems_in_helper, [])
        assert self._helper_started is not None
        if not self._helper_started.done():
            return False
        if self._helper_started.exception() is not None:  # it could not start
            self._helper_lost()
            return False
        return True

    def _helper_lost(self) -> None:
        log.warning("signature_helper_lost", retry_in_s=HELPER_RETRY_S)
        self.close()
        self._helper_again_at = time.monotonic() + HELPER_RETRY_S

    def close(self) -> None:
        if self._helper is not None:
            self._helper.shutdown(wait=False, cancel_futures=True)
            self._helper, self._helper_started = None, None

    def problem(
        self, subject: str, data: bytes, headers: Mapping[str, str] | None, stored_at: float | None = None
    ) -> str:
        """ "" when a trusted producer signed the event for a subject its role may publish, else
        why it is refused."""
        headers = headers or {}
        producer = headers.get(PRODUCER_HEADER, "")
        trusted, key = self._producers.get(producer, (None, None))
        if trusted is None or key is None:
            return f"producer {producer[:60]!r} is not a trusted producer" if producer else "event is not signed"
        try:
            key.verify(_signed_bytes(subject, data), base64.b64decode(headers.get(SIGNATURE_HEADER, "")))
        except (nacl.exceptions.BadSignatureError, binascii.Error, ValueError):
            return f"signature does not match producer {producer}"
        if not any(subject_matches(pattern, subject) for pattern in EVENTS[trusted.role]):
            return f"producer {producer} ({trusted.role}) may not sign {subject[:120]}"
        if trusted.retired_at is not None and (stored_at is None or stored_at >= trusted.retired_at):
            return f"producer {producer} ({trusted.role}) retired before this event was stored"
        return ""


_helper_check: ProducerCheck | None = None  # in the helper process


def _start_helper(trusted: list[TrustedProducer], parent: int) -> None:
    global _helper_check
    _helper_check = ProducerCheck(trusted)
    _end_with_parent(parent)


def _end_with_parent(parent: int) -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent thread dies. Elsewhere, a
    thread polls for the parent (a helper orphaned by a SIGKILL would otherwise hold ~100 MB)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0 and os.getppid() == parent:
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


_PR_SET_PDEATHSIG = 1


def _problems_in_helper(events: list[Signed]) -> list[str]:
    assert _helper_check is not None, "the helper starts with _start_helper"
    return [_helper_check.problem(*event) for event in events]
