"""Who may publish what on NATS, and how services prove who they are there.

Each service connects as its own NATS user, identified by an nkey (an Ed25519 key pair: the
server stores only public keys, the seed stays in the service's Secret). Subject permissions
then make the bus trustworthy: only routers publish attempts and requests, only the ledger
publishes budget and key states, everyone else may only read. The same seed signs every event
a service publishes (`Tierlift-Producer`, `Tierlift-Signature` headers), so the ledger can
refuse an event that reached the stream some other way (a server without these permissions, a
misconfigured account): it dead-letters what no trusted producer signed.

`server_authorization` renders the nats-server `authorization` block from `PERMISSIONS`; the
embedded stack writes it, and the chart renders the same from helm/tierlift/files/nats-permissions.json
(kept equal to `PERMISSIONS` by tests/unit/test_nats_access.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import nacl.exceptions
import nacl.signing
import nkeys

from tierlift.core.logging import get_logger

log = get_logger(__name__)

PRODUCER_HEADER = "Tierlift-Producer"
SIGNATURE_HEADER = "Tierlift-Signature"

_READ = [  # what every user needs to read the stream with ordered (push) consumers
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.TIERLIFT",
    "$JS.API.CONSUMER.CREATE.TIERLIFT",
    "$JS.API.CONSUMER.CREATE.TIERLIFT.*.>",  # an ephemeral consumer with a filter
    "$JS.API.CONSUMER.INFO.TIERLIFT.*",
    "$JS.API.CONSUMER.DELETE.TIERLIFT.*",
    "$JS.FC.TIERLIFT.>",  # flow-control replies
]
_DURABLE = [  # pull consumers that ack (work queues)
    "$JS.API.CONSUMER.DURABLE.CREATE.TIERLIFT.*",
    "$JS.API.CONSUMER.MSG.NEXT.TIERLIFT.*",
    "$JS.ACK.TIERLIFT.>",
]
_KV = "TIERLIFT_IDEMPOTENCY"
_SPEND = "TIERLIFT_SHADOW_SPEND"
_STREAM_ADMIN = ["$JS.API.STREAM.CREATE.TIERLIFT", "$JS.API.STREAM.UPDATE.TIERLIFT"]


def _kv(bucket: str) -> list[str]:
    """What a user needs to create, read and write one key-value bucket."""
    return [
        f"$JS.API.STREAM.INFO.KV_{bucket}", f"$JS.API.STREAM.CREATE.KV_{bucket}",
        f"$JS.API.STREAM.UPDATE.KV_{bucket}", f"$JS.API.STREAM.MSG.GET.KV_{bucket}",
        f"$JS.API.DIRECT.GET.KV_{bucket}.>", f"$KV.{bucket}.>",
    ]  # fmt: skip


PERMISSIONS: dict[str, dict[str, list[str]]] = {
    "router": {
        "publish": [
            "tierlift.request.>",
            "tierlift.attempt.>",
            "tierlift.shadow.>",
            "tierlift.feedback.>",
            "tierlift.audit.policy.>",
            "tierlift.keys.used",
            *_READ,
            *_STREAM_ADMIN,
            *_kv(_KV),
            *_kv(_SPEND),
        ],
        "subscribe": ["_INBOX.>"],
    },
    "ledger": {
        "publish": [
            "tierlift.budget.>",
            "tierlift.keys.state.>",
            "tierlift.audit.>",
            "tierlift.deadletter.>",
            *_READ,
            *_DURABLE,
            *_STREAM_ADMIN,
        ],
        "subscribe": ["_INBOX.>"],
    },
    # judges shadow runs: reads them (a durable consumer), publishes scores and alerts; owns rollouts
    "assessor": {
        "publish": [
            "tierlift.quality.>",
            "tierlift.rollout.state.>",
            "tierlift.audit.rollout.>",
            "tierlift.deadletter.tierlift.shadow.>",
            *_READ,
            *_DURABLE,
            *_kv("TIERLIFT_SUITE_BASELINES"),  # each model path's first golden-set score
        ],
        "subscribe": ["_INBOX.>"],
    },
    # dashboards, a debugging session, a future consumer: reads events, publishes none
    "observer": {"publish": list(_READ), "subscribe": ["_INBOX.>"]},
}


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


def _signed_bytes(subject: str, data: bytes) -> bytes:
    return subject.encode() + b"\n" + data


class EventSigner:
    """Signs what a service publishes with its nkey seed."""

    def __init__(self, seed: str) -> None:
        self._pair = nkeys.from_seed(seed.encode())
        self.public_key = self._pair.public_key.decode()

    def headers(self, subject: str, data: bytes) -> dict[str, str]:
        signature = self._pair.sign(_signed_bytes(subject, data))
        return {PRODUCER_HEADER: self.public_key, SIGNATURE_HEADER: base64.b64encode(signature).decode()}


Signed = tuple[str, bytes, Mapping[str, str] | None]  # subject, payload, headers
HELPER_RETRY_S = 60.0


class ProducerCheck:
    """Which producers' events a consumer accepts: those signed by one of `trusted` nkeys.

    `problems` checks a batch of `helper_from` events or more in a helper process (one per
    ProducerCheck, its trusted keys given once): an Ed25519 verification costs ~45 µs of CPU,
    which on the event loop took a third of the ledger's ingest and ran on one core; in a thread
    it is slower still, as the thread waits for the GIL after every event while the loop is busy
    (5 ms a wait, the switch interval). The first such batch starts the helper (~1 s: `spawn`
    imports the service's modules), unless `start_helper` did, and is checked here meanwhile, as
    is every batch while it starts, so a backlog never waits for it."""

    def __init__(self, trusted: Iterable[str], helper_from: int = 64) -> None:
        self._trusted = list(trusted)
        self._keys = {key: verify_key(key) for key in self._trusted}
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
        sent: list[Signed] = [(subject, data, {k: headers[k] for k in wanted if k in headers} if headers else None)
                              for subject, data, headers in events]  # fmt: skip
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
            self._helper = ProcessPoolExecutor(1, spawn, _start_helper, (self._trusted,))
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

    def problem(self, subject: str, data: bytes, headers: Mapping[str, str] | None) -> str:
        """ "" when a trusted producer signed the event, else why it is refused."""
        headers = headers or {}
        producer = headers.get(PRODUCER_HEADER, "")
        key = self._keys.get(producer)
        if key is None:
            return f"producer {producer[:60]!r} is not a trusted producer" if producer else "event is not signed"
        try:
            key.verify(_signed_bytes(subject, data), base64.b64decode(headers.get(SIGNATURE_HEADER, "")))
        except (nacl.exceptions.BadSignatureError, binascii.Error, ValueError):
            return f"signature does not match producer {producer}"
        return ""


_helper_check: ProducerCheck | None = None  # in the helper process


def _start_helper(trusted: list[str]) -> None:
    global _helper_check
    _helper_check = ProducerCheck(trusted)


def _problems_in_helper(events: list[Signed]) -> list[str]:
    assert _helper_check is not None, "the helper starts with _start_helper"
    return [_helper_check.problem(*event) for event in events]


def trusted_keys(value: str) -> list[str]:
    """Comma-separated public nkeys from settings, each checked now (a typo fails at start)."""
    keys = [k.strip() for k in value.split(",") if k.strip()]
    for key in keys:
        verify_key(key)
    return keys
