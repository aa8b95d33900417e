"""Who is calling. Every call carries `authorization: Bearer <key>`; an interceptor resolves the
principal once per call, refuses the call without one (UNAUTHENTICATED) or when its role may not
call the method (PERMISSION_DENIED), and hands the principal to the servicer.

API keys look like `tl_<key id>_<secret>`; only their SHA-256 is stored (the secret has 192
random bits, so a slow hash would add latency and no safety). The ledger owns the keys and
publishes each one's state on `tierlift.keys.state.<key id>`; every other service keeps a
`KeyBook` from those events, so no request waits on SQL and a revocation reaches every router
within seconds. Services present service keys to each other (the router to the classifier and
the adapters); those are trusted by their hash, from settings.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from nats.aio.msg import Msg

from tierlift.core.entry import StartupError
from tierlift.v1 import events_pb2

ROLES = ("app", "viewer", "finance", "admin")
ROUTER = "router"  # a router presenting its service key
ASSESSOR = "assessor"  # the assessor's LLM-judge calls to the router (attempts billed as kind "judge")
KEY_SUBJECT = "tierlift.keys.state"
_PREFIX = "tl_"
_EXEMPT = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    tenant: str = ""  # "" for finance, admin and services
    workloads: tuple[str, ...] = ()  # app keys: the workloads allowed; empty = all

    @property
    def sees_every_tenant(self) -> bool:
        return self.role in ("finance", "admin")


@dataclass(frozen=True)
class _Key:
    principal: Principal
    sha256: str
    expires_at: datetime | None
    revoked: bool


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(key id, the whole key): shown once, stored only as `digest(key)`."""
    key_id = secrets.token_hex(6)
    return key_id, f"{_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"


def key_id_of(token: str) -> str:
    if not token.startswith(_PREFIX):
        return ""
    return token[len(_PREFIX) :].split("_", 1)[0]


class KeyBook:
    """Every key a service accepts, in memory."""

    def __init__(self) -> None:
        self._keys: dict[str, _Key] = {}
        self._services: dict[str, Principal] = {}
        self.certificates: dict[str, Principal] = {}
        # key id -> last time (epoch seconds) a caller presented it; reported by `take_used`
        self._used: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def trust_service(self, sha256: str, role: str) -> None:
        self._services[sha256.lower()] = Principal(key_id=f"service:{role}", role=role)

    def trust_certificates(self, identities: str) -> None:
        """Callers known by a name in their TLS client certificate (mutual TLS), from
        "name=role" or "name=app:tenant" pairs, comma-separated."""
        for entry in filter(None, (e.strip() for e in identities.split(","))):
            name, _, grant = entry.rpartition("=")
            role, _, tenant = grant.partition(":")
            if not name or role not in (*ROLES, ROUTER) or (role == "app") != bool(tenant):
                raise StartupError(f"TIERLIFT_TLS_IDENTITIES: {entry!r} is not name=role or name=app:tenant")
            self.certificates[name] = Principal(f"cert:{name}", role, tenant)

    def by_certificate(self, auth_context: Mapping[str, Iterable[bytes]]) -> Principal | None:
        """The principal a verified peer certificate names (gRPC fills the auth context only
        from a certificate the CA signed)."""
        for field in ("x509_subject_alternative_name", "x509_common_name"):
            for name in auth_context.get(field, ()):
                principal = self.certificates.get(name.decode(errors="replace"))
                if principal is not None:
                    return principal
        return None

    def put(self, state: events_pb2.KeyState) -> None:
        expires = state.expires_at.ToDatetime(tzinfo=UTC) if state.HasField("expires_at") else None
        principal = Principal(state.key_id, state.role, state.tenant, tuple(state.workloads))
        self._keys[state.key_id] = _Key(principal, state.secret_sha256, expires, state.revoked)

    def authenticate(self, token: str) -> Principal | None:
        hashed = digest(token)
        service = self._services.get(hashed)
        if service is not None:
            return service
        if token.startswith(_PREFIX):
            key = self._keys.get(key_id_of(token))
            if key is None or key.revoked or not hmac.compare_digest(key.sha256, hashed):
                return None
            if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
                return None
            self._used[key.principal.key_id] = time.time()
            return key.principal
        return None

    def take_used(self) -> events_pb2.KeysUsed | None:
        """The keys used since the last call, as an event (None if none was)."""
        used, self._used = self._used, {}
        if not used:
            return None
        event = events_pb2.KeysUsed(event_id=f"keys.used.{secrets.token_hex(8)}")
        event.occurred_at.GetCurrentTime()
        for key_id, at in used.items():
            event.last_used[key_id].FromNanoseconds(int(at * 1e9))
        return event

    async def on_message(self, msg: Msg) -> None:
        state = events_pb2.KeyState()
        state.ParseFromString(msg.data)
        self.put(state)

    async def follow(self, bus: Any, timeout_s: float = 10.0) -> None:
        """Watch the key states and wait until every key published so far is known."""
        from tierlift.core.bus_layout import STREAM

        await bus.watch_latest(f"{KEY_SUBJECT}.>", self.on_message)
        info = await bus.js.stream_info(STREAM, subjects_filter=f"{KEY_SUBJECT}.>")
        known = len(info.state.subjects or {})
        for _ in range(int(timeout_s / 0.02)):
            if len(self) >= known:
                return
            await asyncio.sleep(0.02)


_CURRENT: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current_principal() -> Principal:
    """The caller of the RPC being served (set by `Authenticate`)."""
    principal = _CURRENT.get()
    if principal is None:
        raise RuntimeError("no principal: the servicer runs without ServerCalls admitting its callers")
    return principal


def caller() -> Principal | None:
    """The caller, or None in a servicer run without a caller check (in-process tests)."""
    return _CURRENT.get()


def bearer(metadata: Iterable[tuple[str, Any]] | None) -> str:
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value.removeprefix("Bearer ").strip()
    return ""


class Authenticate:
    """Who may call what. `roles`: method (e.g. "/tierlift.v1.Router/Complete") or "*" -> the
    roles that may call it. Applied to every call by `core/grpc_server.py`'s ServerCalls."""

    def __init__(self, keys: KeyBook, roles: Mapping[str, frozenset[str]], others_denied: bool = False) -> None:
        # others_denied: a service that knows only its few trusted callers (the routers) answers a
        # credential it does not know with PERMISSION_DENIED, not UNAUTHENTICATED
        self.keys, self.roles, self.others_denied = keys, roles, others_denied

    @staticmethod
    def exempt(method: str) -> bool:
        """Health and reflection answer anyone."""
        return method.startswith(_EXEMPT)

    async def admit(self, method: str, context: grpc.aio.ServicerContext) -> Principal:
        """The caller of `method` on this call, by its key (else its client certificate), made
        the current caller; the call is aborted when there is none or it may not call `method`."""
        call = method.rsplit("/", 1)[-1]
        allowed = self.roles.get(method, self.roles.get("*", frozenset()))
        token = bearer(context.invocation_metadata())
        if not token and self.keys.certificates:
            principal = self.keys.by_certificate(context.auth_context())
            missing = "authorization: an API key or a known client certificate is required"
        else:
            principal = self.keys.authenticate(token)
            missing = "authorization: a valid API key is required"
        if principal is None and (token or self.keys.certificates) and self.others_denied:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"only {', '.join(sorted(allowed))} may call {call}")
        if principal is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, missing)
        assert principal is not None  # abort raised otherwise
        if principal.role not in allowed:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"role {principal.role!r} may not call {call}")
        _CURRENT.set(principal)
        return principal


def _with_bearer(details: grpc.aio.ClientCallDetails, key: str) -> grpc.aio.ClientCallDetails:
    pair = ("authorization", f"Bearer {key}")
    return details._replace(metadata=grpc.aio.Metadata(*(details.metadata or ()), pair))


# Two classes: grpc.aio files an interceptor under the first call type it implements only.
class _UnaryWithKey(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, key: str) -> None:
        self.key = key

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_bearer(details, self.key), request)


class _StreamWithKey(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, key: str) -> None:
        self.key = key

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_bearer(details, self.key), request)


def key_interceptors(key: str) -> list[Any]:
    """Client interceptors that present `key` on every unary and server-streaming call."""
    return [_UnaryWithKey(key), _StreamWithKey(key)] if key else []


def routers_only(trusted_sha256: Iterable[str], certificates: str = "") -> Authenticate:
    """For the classifier and the adapters: only routers, by their service keys or their
    client certificates (`certificates`, as TIERLIFT_TLS_IDENTITIES), may call."""
    keys = KeyBook()
    for sha256 in trusted_sha256:
        keys.trust_service(sha256, ROUTER)
    keys.trust_certificates(certificates)
    return Authenticate(keys, {"*": frozenset({ROUTER})}, others_denied=True)


class _SyncWithKey(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, key: str) -> None:
        self.key = key

    def _details(self, details: Any) -> Any:
        return add_bearer(details, self.key)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


@dataclass(frozen=True)
class _SyncDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


def add_bearer(details: Any, key: str) -> grpc.ClientCallDetails:
    """Blocking-call details with `authorization: Bearer <key>` added."""
    metadata = [*(details.metadata or ()), ("authorization", f"Bearer {key}")]
    return _SyncDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready,
                        details.compression)  # fmt: skip


def with_key(channel: grpc.Channel, key: str) -> grpc.Channel:
    """A blocking channel that presents `key` on every call (the CLI's, the tests')."""
    return grpc.intercept_channel(channel, _SyncWithKey(key)) if key else channel
