"""What exists on the bus, and who owns it: the stream, the key-value buckets and the durable
consumers, each created and configured only by the bootstrap identity (`tierlift bus-bootstrap`:
the chart's Job, `tierlift up` in the dev stack), never by a service.

A service that could create or update a stream could also give it a `republish` or a mirror
that carries stored messages onto any subject, past its own permissions; one that could
create or delete consumers could read every subject, or silence another's. So services only
bind to what is listed here, and core/nats_access.py grants each the JetStream API subjects of
its own entries (fetch, ack, info) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, NotFoundError

from tierlift.core.entry import StartupError

STREAM = "TIERLIFT"
# Long enough to cover a client retrying a request with the same idempotency key.
DUPLICATE_WINDOW_S = 600.0
# Unacknowledged messages a durable consumer may hold: the ledger handles up to three batches
# at once (TIERLIFT_INGEST_BATCH <= 1,024), with room for a redelivery.
MAX_ACK_PENDING = 8 * 1024
ACK_WAIT_S = 30.0
IDEMPOTENCY_TTL_S = 86_400.0


@dataclass(frozen=True)
class Durable:
    owner: str  # the NATS role that fetches and acks it
    subject: str  # its filter: all it ever delivers


@dataclass(frozen=True)
class Bucket:
    owner: str
    ttl_s: float = 0.0  # 0: entries never expire


# The subjects below are spelled out (not imported from core/bus.py) so the permission table can
# be read in one place; tests/unit/test_nats_access.py checks they match bus.SUBJECT_*.
DURABLES: dict[str, Durable] = {
    "ledger-attempts": Durable("ledger", "tierlift.attempt.finished"),
    "ledger-attempts-usage": Durable("ledger", "tierlift.attempt.usage"),
    "ledger-attempts-started": Durable("ledger", "tierlift.attempt.started"),
    "ledger-attempts-requests": Durable("ledger", "tierlift.request.completed"),
    "ledger-attempts-settled": Durable("ledger", "tierlift.request.settled"),
    "ledger-attempts-audit": Durable("ledger", "tierlift.audit.>"),
    "ledger-attempts-keys-used": Durable("ledger", "tierlift.keys.used"),
    "ledger-attempts-scores": Durable("ledger", "tierlift.quality.scored"),
    "ledger-attempts-alerts": Durable("ledger", "tierlift.quality.alert"),
    "ledger-attempts-feedback": Durable("ledger", "tierlift.feedback.given"),
    "assessor-shadows": Durable("assessor", "tierlift.shadow.finished"),
}


@dataclass(frozen=True)
class Service:
    """A subject answered on core NATS (request/reply): `server` subscribes and replies to the
    asker's inbox (and only to a request it received: nats-server's `allow_responses`), each role
    in `clients` may ask. Kept outside the stream's `tierlift.>`: JetStream would store a request
    there and answer it first, with its own publish acknowledgement."""

    server: str
    clients: tuple[str, ...]


SUBJECT_LEASE = "tierlift-rpc.budget.lease"  # a router's lease on a budget's headroom (ledger/_leases.py)
LEASE_BUCKET = "TIERLIFT_BUDGET_LEASES"
SERVICES: dict[str, Service] = {
    SUBJECT_LEASE: Service("ledger", ("router",)),
}

BUCKETS: dict[str, Bucket] = {
    "TIERLIFT_IDEMPOTENCY": Bucket("router", IDEMPOTENCY_TTL_S),  # answers by idempotency key
    "TIERLIFT_SHADOW_SPEND": Bucket("router", 3 * 86_400.0),  # each workload's shadow spend per day
    "TIERLIFT_SUITE_BASELINES": Bucket("assessor"),  # each model path's first golden-set score
    # each budget's lease book per period (ledger/_leases.py), shared by the ledger replicas; a book
    # outlives its month, then goes
    LEASE_BUCKET: Bucket("ledger", 40 * 86_400.0),
}


def durable_for(subject: str, owner: str) -> str:
    """The durable consumer `owner` reads `subject` with (a StartupError names a missing one)."""
    for name, durable in DURABLES.items():
        if durable.subject == subject and durable.owner == owner:
            return name
    raise StartupError(f"no durable consumer of {subject} belongs to {owner} (core/bus_layout.py)")


def stream_config(replicas: int = 1) -> api.StreamConfig:
    return api.StreamConfig(
        name=STREAM,
        subjects=["tierlift.>"],
        storage=api.StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_msg_ttl=True,  # shadow texts expire with the policy's retention
    )


def consumer_config(name: str, subject: str) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=name,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_ack_pending=MAX_ACK_PENDING,
        filter_subject=subject,
    )


async def ensure_stream(js: JetStreamContext, replicas: int = 1) -> None:
    config = stream_config(replicas)
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)


async def ensure_durable(js: JetStreamContext, name: str, subject: str) -> None:
    """Create the durable consumer, or bring an existing one back to its configuration."""
    await js.add_consumer(STREAM, config=consumer_config(name, subject))


async def ensure_bucket(js: JetStreamContext, name: str, ttl_s: float, replicas: int = 1) -> None:
    config = api.KeyValueConfig(bucket=name, ttl=ttl_s or None, replicas=replicas, history=1)
    try:
        await js.key_value(name)
    except BucketNotFoundError:
        await js.create_key_value(config=config)


async def bootstrap(js: JetStreamContext, replicas: int = 1, idempotency_ttl_s: float = IDEMPOTENCY_TTL_S) -> None:
    """Everything the services bind to, created or brought back to its configuration. Run as the
    bootstrap identity, before the services start and after every upgrade; safe to run again."""
    await ensure_stream(js, replicas)
    for name, durable in DURABLES.items():
        await ensure_durable(js, name, durable.subject)
    for name, bucket in BUCKETS.items():
        ttl = idempotency_ttl_s if name == "TIERLIFT_IDEMPOTENCY" else bucket.ttl_s
        await ensure_bucket(js, name, ttl, replicas)


async def open_bucket(js: JetStreamContext, name: str) -> object:
    """A bucket the bootstrap made (a StartupError says so when it has not run)."""
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        raise StartupError(f"key-value bucket {name} does not exist: run `tierlift bus-bootstrap` first") from None
