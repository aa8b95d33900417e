"""API keys and the audit trail, kept in the ledger's database.

The ledger is the one writer: it creates and revokes keys, records each admin action, and
publishes every key's state (its hash, never the key) on `tierlift.keys.state.<key id>` for
the services that authenticate callers.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from tierlift.core.bus import SUBJECT_AUDIT, SUBJECT_KEYS_USED, EventBus, PoisonEvent
from tierlift.core.identity import KEY_SUBJECT, ROLES, KeyBook, Principal, digest, new_key
from tierlift.core.ids import is_slug, shown
from tierlift.ledger._ingest import EventIngest, fitted, free_text, occurred_at, parse, timestamp
from tierlift.ledger._schema import api_keys, audit, misfit
from tierlift.v1 import events_pb2, ledger_pb2

MAX_DESCRIPTION = 200
DEFAULT_GRACE_S = 86_400  # how long a rotated key still works, unless the rotation says
MAX_GRACE_S = 30 * 86_400


def key_row(request: ledger_pb2.KeyRequest, now: datetime) -> tuple[dict[str, Any], str]:
    """(the row to store, the whole key to show once); ValueError names the field."""
    if request.role not in ROLES:
        raise ValueError(f"role: {shown(request.role)} is not one of {list(ROLES)}")
    if request.role in ("app", "viewer") and not is_slug(request.tenant):
        raise ValueError(f"tenant: {shown(request.tenant)} is not a lowercase slug (app and viewer keys need one)")
    if request.tenant and not is_slug(request.tenant):
        raise ValueError(f"tenant: {shown(request.tenant)} is not a lowercase slug")
    for i, workload in enumerate(request.workloads):
        if not is_slug(workload):
            raise ValueError(f"workloads[{i}]: {shown(workload)} is not a lowercase slug")
    if len(request.description) > MAX_DESCRIPTION:
        raise ValueError(f"description: longer than {MAX_DESCRIPTION} characters")
    expires = None
    if request.expires_at:
        try:
            expires = datetime.fromisoformat(request.expires_at)
        except ValueError:
            raise ValueError(f"expires_at: {shown(request.expires_at)} is not an RFC 3339 timestamp") from None
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        if expires <= now:
            raise ValueError("expires_at: is in the past")
    key_id, secret = new_key()
    row = {
        "key_id": key_id, "secret_sha256": digest(secret), "tenant": request.tenant, "role": request.role,
        "workloads": ",".join(request.workloads), "description": request.description, "created_at": now,
        "expires_at": expires, "revoked_at": None,
    }  # fmt: skip
    if problem := misfit(api_keys, row):  # a NUL in the description: PostgreSQL's text cannot hold it
        raise ValueError(problem)
    return row, secret


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def as_api_key(row: dict[str, Any]) -> ledger_pb2.ApiKey:
    return ledger_pb2.ApiKey(
        key_id=row["key_id"], tenant=row["tenant"], role=row["role"],
        workloads=[w for w in row["workloads"].split(",") if w], created_at=_iso(row["created_at"]),
        expires_at=_iso(row["expires_at"]), revoked_at=_iso(row["revoked_at"]), description=row["description"],
        last_used_at=_iso(row.get("last_used_at")),
    )  # fmt: skip


def as_state(row: dict[str, Any]) -> events_pb2.KeyState:
    expires = row["expires_at"]
    if expires is not None and expires.tzinfo is None:  # SQLite gives it back without its zone
        expires = expires.replace(tzinfo=UTC)
    # the expiry is in the id: a key rotated out (a new expiry) is a new event, not a duplicate
    expiry = f".until{int(expires.timestamp())}" if expires is not None else ""
    state = events_pb2.KeyState(
        event_id=f"key.{row['key_id']}.{'revoked' if row['revoked_at'] else 'active'}{expiry}",
        key_id=row["key_id"], secret_sha256=row["secret_sha256"], tenant=row["tenant"], role=row["role"],
        workloads=[w for w in row["workloads"].split(",") if w], revoked=row["revoked_at"] is not None,
    )  # fmt: skip
    state.occurred_at.GetCurrentTime()
    if expires is not None:
        state.expires_at.FromDatetime(expires)
    return state


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(api_keys), row)

    def rows(self, tenant: str = "") -> list[dict[str, Any]]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if tenant:
            query = query.where(api_keys.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def revoke(self, key_id: str, now: datetime) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).mappings().one_or_none()
        return dict(row) if row else None

    def row(self, key_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).mappings().one_or_none()
        return dict(row) if row else None

    def expire(self, key_id: str, at: datetime) -> dict[str, Any] | None:
        """The key expires at `at` unless it expires sooner already."""
        column = api_keys.c.expires_at
        with self.engine.begin() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, column.is_(None) | (column > at))
                .values(expires_at=at)
            )
        return self.row(key_id)

    def mark_used(self, rows: list[dict[str, Any]]) -> None:
        """Keep the latest use per key (`key_use_row`s); reports from several routers arrive in
        any order."""
        latest: dict[str, datetime] = {}
        for row in rows:
            for key_id, when in row["last_used"].items():
                latest[key_id] = max(latest.get(key_id, when), when)
        with self.engine.begin() as conn:
            for key_id, when in sorted(latest.items()):  # key order, as two ledger replicas may run
                column = api_keys.c.last_used_at
                conn.execute(
                    update(api_keys)
                    .where(api_keys.c.key_id == key_id, (column.is_(None)) | (column < when))
                    .values(last_used_at=when)
                )

    def add_audit(self, row: dict[str, Any]) -> None:
        """Once per event id (an `audit_row`): the ledger's own entries come back through the
        audit consumer."""
        with contextlib.suppress(IntegrityError), self.engine.begin() as conn:
            conn.execute(insert(audit), row)

    def add_audit_events(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.add_audit(row)

    def audit_entries(self, since: datetime | None, limit: int) -> list[ledger_pb2.AuditEntry]:
        query = select(audit).order_by(audit.c.occurred_at.desc()).limit(limit)
        if since:
            query = query.where(audit.c.occurred_at >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            ledger_pb2.AuditEntry(event_id=r["event_id"], occurred_at=_iso(r["occurred_at"]), actor=r["actor"],
                                  action=r["action"], target=r["target"], detail=r["detail"])
            for r in rows
        ]  # fmt: skip


class KeyKeeper:
    """The ledger's side: store, publish, keep its own KeyBook current, audit."""

    def __init__(self, store: KeyStore, bus: EventBus, book: KeyBook) -> None:
        self.store, self.bus, self.book = store, bus, book
        self._seen: dict[str, tuple[Any, Any]] = {}  # key id -> (revoked_at, expires_at) published

    async def publish_all(self) -> None:
        for row in self.store.rows():
            await self._publish(row)
            self._seen[row["key_id"]] = (row["revoked_at"], row["expires_at"])

    async def publish_changes(self) -> int:
        """Publish keys written to the database by someone else (another ledger replica,
        `tierlift keys create --database-url`): how every service learns of them."""
        changed = 0
        for row in self.store.rows():
            if self._seen.get(row["key_id"]) != (row["revoked_at"], row["expires_at"]):
                await self._publish(row)
                self._seen[row["key_id"]] = (row["revoked_at"], row["expires_at"])
                changed += 1
        return changed

    async def _publish(self, row: dict[str, Any]) -> None:
        state = as_state(row)
        self.book.put(state)
        await self.bus.publish(f"{KEY_SUBJECT}.{row['key_id']}", state, state.event_id)

    async def record_own_use(self) -> None:
        """When each key was last presented to this ledger, written as a router's report is:
        admin, finance and viewer keys call only the ledger, so no router reports their use."""
        if (used := self.book.take_used()) is not None:  # taken on the loop, where callers are admitted
            await asyncio.to_thread(self.store.mark_used, [key_use_row(used.SerializeToString())])

    async def audit(self, actor: Principal, action: str, target: str, detail: str = "") -> None:
        await self.record_own_use()  # the admin acting now is seen using its key
        now = Timestamp()
        now.GetCurrentTime()
        entry = events_pb2.AuditEvent(
            event_id=f"audit.{action}.{target}.{now.ToNanoseconds()}"[:128], occurred_at=now, actor=actor.key_id,
            action=action, target=target, detail=detail,
        )  # fmt: skip
        self.store.add_audit(audit_row(entry.SerializeToString()))
        await self.bus.publish(f"{SUBJECT_AUDIT}.{action}", entry, entry.event_id)

    async def create(self, actor: Principal, request: ledger_pb2.KeyRequest) -> ledger_pb2.CreatedKey:
        row, secret = key_row(request, datetime.now(UTC))
        self.store.create(row)
        await self._publish(row)
        self._seen[row["key_id"]] = (row["revoked_at"], row["expires_at"])
        await self.audit(actor, "key.created", row["key_id"], f"role {row['role']}, tenant {row['tenant'] or '(all)'}")
        return ledger_pb2.CreatedKey(key=as_api_key(row), secret=secret)

    async def revoke(self, actor: Principal, key_id: str) -> ledger_pb2.ApiKey | None:
        row = self.store.revoke(key_id, datetime.now(UTC))
        if row is None:
            return None
        await self._publish(row)
        self._seen[key_id] = (row["revoked_at"], row["expires_at"])
        await self.audit(actor, "key.revoked", key_id)
        return as_api_key(row)

    async def rotate(self, actor: Principal, key_id: str, grace_s: int) -> ledger_pb2.CreatedKey | None:
        """A new key like `key_id` (None: no such key); the old one works `grace_s` more seconds.
        ValueError: the old key is revoked or expired (nothing to rotate)."""
        old = self.store.row(key_id)
        if old is None:
            return None
        now = datetime.now(UTC)
        expires = old["expires_at"]
        if expires is not None and expires.tzinfo is None:  # SQLite gives it back without its zone
            expires = expires.replace(tzinfo=UTC)
        if old["revoked_at"] is not None or (expires is not None and expires <= now):
            raise ValueError(f"key_id: {key_id} is revoked or expired; create a key instead")
        workloads = [w for w in old["workloads"].split(",") if w]
        request = ledger_pb2.KeyRequest(tenant=old["tenant"], role=old["role"], workloads=workloads,
                                        expires_at=expires.isoformat() if expires else "",
                                        description=old["description"])  # fmt: skip
        row, secret = key_row(request, now)
        self.store.create(row)
        await self._publish(row)
        self._seen[row["key_id"]] = (row["revoked_at"], row["expires_at"])
        retired = self.store.expire(key_id, now + timedelta(seconds=grace_s))
        assert retired is not None
        await self._publish(retired)
        self._seen[key_id] = (retired["revoked_at"], retired["expires_at"])
        await self.audit(actor, "key.rotated", key_id, f"new key {row['key_id']}; the old one works for {grace_s} s")
        return ledger_pb2.CreatedKey(key=as_api_key(row), secret=secret)


def key_use_row(data: bytes) -> dict[str, Any]:
    """A router's report of when keys were last presented; PoisonEvent names what can never be
    stored (made here, not in the write: a failed write fails its whole batch at every redelivery)."""
    event = parse(events_pb2.KeysUsed, data, required=("event_id",))
    last_used = {}
    for key_id, at in event.last_used.items():
        if problem := misfit(api_keys, {"key_id": key_id}):
            raise PoisonEvent(f"last_used: {problem}")
        last_used[key_id] = timestamp(at, f"last_used[{shown(key_id)}]")
    return {"event_id": event.event_id, "last_used": last_used}


def audit_row(data: bytes) -> dict[str, Any]:
    """An audit entry from any service; each text is cut to its column. What can never be stored
    (an invalid time, a NUL in an id) is a PoisonEvent naming the field; the target and detail are
    stories (`free_text`): an audit entry is not lost over what it says."""
    event = parse(events_pb2.AuditEvent, data, required=("event_id", "action"))
    return fitted(audit, {
        "event_id": event.event_id[:128], "occurred_at": occurred_at(event), "actor": event.actor[:64],
        "action": event.action[:32], "target": free_text(event.target, 256),
        "detail": free_text(event.detail, 1024),
    })  # fmt: skip


def key_use_ingest(bus: EventBus, store: KeyStore) -> EventIngest:
    """The routers' reports of when each key was last presented."""
    return EventIngest(bus, SUBJECT_KEYS_USED, "api_keys", key_use_row, store.mark_used)


def audit_ingest(bus: EventBus, store: KeyStore) -> EventIngest:
    """Audit events from every service (the routers' policy changes, the ledger's own actions)."""
    return EventIngest(bus, f"{SUBJECT_AUDIT}.>", "audit", audit_row, store.add_audit_events)
