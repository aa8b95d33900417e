"""`Tierlift`: the way an internal app calls the router. One channel per client (with
keepalive), a deadline on every call, retries with jittered backoff only where a retry is safe
(UNAVAILABLE, RESOURCE_EXHAUSTED), always with one idempotency key per logical call so a retry
is never billed twice, and typed errors.

Imports only grpcio and protobuf (and OpenTelemetry's API, if installed, to pass the caller's
trace on): an app needs none of the server's dependencies.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import grpc

from tierlift.client._errors import TierliftError, from_rpc_error
from tierlift.client._inputs import ADDRESS_VARIABLES, choice, env_address, field, number, whole
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

Messages = str | Sequence[dict[str, str]] | Sequence[common_pb2.Message]
# keepalives; and the services' message limit (core/grpc_server.py), so a large answer (2,048
# embeddings of 3,072 dimensions is ~25 MB) is not refused at gRPC's default 4 MiB
_CHANNEL_OPTIONS = [("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_timeout_ms", 10_000),
                    ("grpc.keepalive_permit_without_calls", 1), ("grpc.max_reconnect_backoff_ms", 2_000),
                    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
                    ("grpc.max_send_message_length", 32 * 1024 * 1024)]  # fmt: skip
T = TypeVar("T")
MAX_TOKENS = 32_768  # the router's limit on params.max_tokens


@dataclass(frozen=True)
class Completion:
    text: str
    tier: str
    model: str
    confidence: float
    cost_usd: Decimal
    attempts: int
    escalated: bool
    request_id: str
    response: router_pb2.CompleteResponse  # everything else: the plan, each attempt's story

    @classmethod
    def of(cls, reply: router_pb2.CompleteResponse) -> Completion:
        return cls(
            text=reply.text, tier=common_pb2.Tier.Name(reply.tier).removeprefix("TIER_"), model=reply.model,
            confidence=reply.confidence, cost_usd=Decimal(reply.total_cost_usd or "0"), attempts=len(reply.attempts),
            escalated=any(a.outcome == router_pb2.OUTCOME_LOW_CONFIDENCE for a in reply.attempts),
            request_id=reply.request_id, response=reply,
        )  # fmt: skip


def _messages(messages: Messages) -> list[common_pb2.Message]:
    if isinstance(messages, str):
        return [common_pb2.Message(role="user", content=messages)]
    return [m if isinstance(m, common_pb2.Message) else common_pb2.Message(role=m["role"], content=m["content"])
            for m in messages]  # fmt: skip


_RATINGS = {"good": 1, "bad": -1, "none": 0, 1: 1, -1: -1, 0: 0}


def _params(p: common_pb2.GenerationParams, constraints: dict[str, Any]) -> None:
    """Generation parameters from `constraints` (taken out of it), checked by field."""
    if (max_tokens := constraints.pop("max_tokens", None)) is not None:
        p.max_tokens = whole("params.max_tokens", max_tokens, 0, MAX_TOKENS)
    for name in ("temperature", "top_p"):
        if (value := constraints.pop(name, None)) is not None:
            setattr(p, name, number(f"params.{name}", value))
    if (seed := constraints.pop("seed", None)) is not None:
        p.seed = whole("params.seed", seed, -(2**63), 2**63 - 1)
    with field("params.stop"):
        p.stop.extend(constraints.pop("stop", None) or [])


def feedback_request(
    answer: Completion | str, rating: int | str, regenerated: bool, comment: str
) -> router_pb2.FeedbackRequest:
    """`answer`: the Completion rated, or its request id; `rating`: "good"/1, "bad"/-1, "none"/0."""
    if rating not in _RATINGS:
        raise ValueError(f"rating: {rating!r} is not 'good', 'bad', 'none', 1, -1 or 0")
    request_id = answer.request_id if isinstance(answer, Completion) else answer
    return router_pb2.FeedbackRequest(
        request_id=request_id, rating=_RATINGS[rating], regenerated=regenerated, comment=comment
    )


def _trace_metadata() -> list[tuple[str, str]]:
    try:
        from opentelemetry import propagate
    except ImportError:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


class Tierlift:
    """`Tierlift(address, api_key=..., tenant=..., workload=...)`; every argument defaults to its
    TIERLIFT_* variable (TIERLIFT_ADDRESS, TIERLIFT_API_KEY, TIERLIFT_TENANT, TIERLIFT_WORKLOAD,
    TIERLIFT_LEDGER_ADDRESS, TIERLIFT_ROOT_CERTIFICATES for TLS)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        api_key: str | None = None,
        tenant: str | None = None,
        workload: str | None = None,
        ledger_address: str | None = None,
        timeout_s: float = 60.0,
        max_attempts: int = 4,
        root_certificates: bytes | None = None,
    ) -> None:
        env = os.environ
        self.address = address or env_address(ADDRESS_VARIABLES["router"]) or "127.0.0.1:50051"
        self.api_key = api_key if api_key is not None else env.get("TIERLIFT_API_KEY", "")
        self.tenant = tenant if tenant is not None else env.get("TIERLIFT_TENANT", "")
        self.workload = workload or env.get("TIERLIFT_WORKLOAD", "default")
        self.ledger_address = ledger_address or env_address(ADDRESS_VARIABLES["ledger"])
        self.timeout_s, self.max_attempts = timeout_s, max_attempts
        certs = root_certificates
        if certs is None and env.get("TIERLIFT_ROOT_CERTIFICATES"):
            with open(env["TIERLIFT_ROOT_CERTIFICATES"], "rb") as f:
                certs = f.read()
        self._credentials = grpc.ssl_channel_credentials(certs) if certs is not None else None
        self._channel = self._open(self.address)
        self._router = router_pb2_grpc.RouterStub(self._channel)
        self._ledger_channel: grpc.Channel | None = None

    def _open(self, address: str) -> grpc.Channel:
        if self._credentials is not None:
            return grpc.secure_channel(address, self._credentials, options=_CHANNEL_OPTIONS)
        return grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)

    def __enter__(self) -> Tierlift:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()
        if self._ledger_channel is not None:
            self._ledger_channel.close()

    # --- calls ----------------------------------------------------------------------------------

    def request(self, messages: Messages, **constraints: Any) -> router_pb2.CompleteRequest:
        """The CompleteRequest these arguments make: max_tokens, temperature, top_p, stop, seed,
        data_class ("public" ... "regulated"), region, allowed_tiers (["local", "closed"]),
        max_cost_usd, models, quality_bar, idempotency_key, cohort_key (a user or session id: one
        user sees one arm of a rollout)."""
        key = constraints.pop("idempotency_key", None) or str(uuid.uuid4())
        req = router_pb2.CompleteRequest(tenant=constraints.pop("tenant", self.tenant),
                                         workload=constraints.pop("workload", self.workload),
                                         messages=_messages(messages), idempotency_key=key,
                                         cohort_key=constraints.pop("cohort_key", "") or "")  # fmt: skip
        p, c = req.params, req.constraints
        _params(p, constraints)
        if data_class := constraints.pop("data_class", None):
            c.data_class = choice("constraints.data_class", data_class, common_pb2.DataClass, "DATA_CLASS_")  # type: ignore[assignment]
        for i, tier in enumerate(constraints.pop("allowed_tiers", None) or []):
            c.allowed_tiers.append(choice(f"constraints.allowed_tiers[{i}]", tier, common_pb2.Tier, "TIER_"))  # type: ignore[arg-type]
        with field("constraints.models"):
            c.models.extend(constraints.pop("models", None) or [])
        with field("constraints.region"):
            c.region = constraints.pop("region", "") or ""
        c.max_cost_usd = str(constraints.pop("max_cost_usd", "") or "")
        c.quality_bar = number("constraints.quality_bar", constraints.pop("quality_bar", 0.0) or 0.0)
        if constraints:
            raise TypeError(f"unknown arguments: {sorted(constraints)}")
        return req

    def complete(self, messages: Messages, *, timeout_s: float | None = None, **constraints: Any) -> Completion:
        request = self.request(messages, **constraints)  # one idempotency key for every retry
        reply = self._retrying(lambda left: self._router.Complete(request, timeout=left, metadata=self._metadata()),
                               timeout_s)  # fmt: skip
        return Completion.of(reply)

    def stream(
        self, messages: Messages, *, timeout_s: float | None = None, **constraints: Any
    ) -> Iterator[str | Completion]:
        """Text chunks as they come, then the Completion. Retried only before the first chunk."""
        request = self.request(messages, **constraints)

        def first(left: float) -> tuple[Any, Any]:
            call = self._router.CompleteStream(request, timeout=left, metadata=self._metadata())
            return call, next(call)

        call, chunk = self._retrying(first, timeout_s)
        try:
            while True:
                if chunk.HasField("final"):
                    yield Completion.of(chunk.final)
                    return
                if chunk.text:
                    yield chunk.text
                chunk = next(call)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def plan(self, messages: Messages, *, timeout_s: float | None = None, **constraints: Any) -> router_pb2.RoutingPlan:
        request = self.request(messages, **constraints)
        return self._retrying(
            lambda left: self._router.Plan(request, timeout=left, metadata=self._metadata()), timeout_s
        )

    def feedback(
        self,
        answer: Completion | str,
        rating: int | str = 0,
        *,
        regenerated: bool = False,
        comment: str = "",
        timeout_s: float | None = None,
    ) -> str:
        """Rate an answer (its Completion, or request id): stored against the model path that
        gave it, and shown by `tierlift quality`. Returns the feedback's event id; a retry of the
        same verdict is stored once."""
        request = feedback_request(answer, rating, regenerated, comment)
        ack = self._retrying(
            lambda left: self._router.Feedback(request, timeout=left, metadata=self._metadata()), timeout_s
        )
        return str(ack.event_id)

    def spend(self, tenant: str = "", since: str = "") -> ledger_pb2.SpendReport:
        query = ledger_pb2.SpendQuery(tenant=tenant, since=since)
        return self._retrying(
            lambda left: self._ledger().GetSpend(query, timeout=left, metadata=self._metadata()), None
        )

    def report(self, tenant: str = "", since: str = "") -> ledger_pb2.Report:
        query = ledger_pb2.SpendQuery(tenant=tenant, since=since)
        return self._retrying(
            lambda left: self._ledger().GetReport(query, timeout=left, metadata=self._metadata()), None
        )

    # --- plumbing -------------------------------------------------------------------------------

    def _ledger(self) -> ledger_pb2_grpc.LedgerStub:
        if not self.ledger_address:
            raise ValueError("ledger_address: not set (or TIERLIFT_LEDGER_ADDRESS)")
        if self._ledger_channel is None:
            self._ledger_channel = self._open(self.ledger_address)
        return ledger_pb2_grpc.LedgerStub(self._ledger_channel)

    def _metadata(self) -> list[tuple[str, str]]:
        auth = [("authorization", f"Bearer {self.api_key}")] if self.api_key else []
        return [*auth, *_trace_metadata()]

    def _retrying(self, call: Callable[[float], T], timeout_s: float | None) -> T:
        """Run `call(seconds left)` until it succeeds, a non-retryable error, the attempts, or
        the deadline: backoff 0.2 s x 2^n with full jitter, or the server's retry-after."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        for attempt in range(self.max_attempts):
            left = deadline - time.monotonic()
            try:
                return call(max(left, 0.001))
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
            except StopIteration:  # a stream that ended without its final chunk
                raise TierliftError(grpc.StatusCode.INTERNAL, "the stream ended without its final chunk") from None
            pause = error.retry_after_s if error.retry_after_s is not None else random.uniform(0, 0.2 * 2**attempt)
            if not error.retryable or attempt == self.max_attempts - 1 or time.monotonic() + pause >= deadline:
                raise error from None
            time.sleep(pause)
        raise AssertionError("unreachable")


class AsyncTierlift:
    """The same client for asyncio: `async with AsyncTierlift(...) as tl: await tl.complete(...)`."""

    def __init__(self, address: str | None = None, **options: Any) -> None:
        # the blocking client resolves settings and builds requests; its channel is not used
        self._sync = Tierlift(address, **options)
        self._sync.close()
        opts = _CHANNEL_OPTIONS
        if self._sync._credentials is not None:
            self._channel = grpc.aio.secure_channel(self._sync.address, self._sync._credentials, options=opts)
        else:
            self._channel = grpc.aio.insecure_channel(self._sync.address, options=opts)
        self._router = router_pb2_grpc.RouterStub(self._channel)

    async def __aenter__(self) -> AsyncTierlift:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def complete(self, messages: Messages, *, timeout_s: float | None = None, **constraints: Any) -> Completion:
        request = self._sync.request(messages, **constraints)
        metadata = self._sync._metadata()
        reply = await self._retrying(lambda s: self._router.Complete(request, timeout=s, metadata=metadata), timeout_s)
        return Completion.of(reply)

    async def stream(
        self, messages: Messages, *, timeout_s: float | None = None, **constraints: Any
    ) -> AsyncIterator[str | Completion]:
        """Text chunks, then the Completion; not retried once text has arrived."""
        request = self._sync.request(messages, **constraints)
        call = self._router.CompleteStream(request, timeout=timeout_s or self._sync.timeout_s,
                                           metadata=self._sync._metadata())  # fmt: skip
        try:
            async for chunk in call:
                if chunk.HasField("final"):
                    yield Completion.of(chunk.final)
                elif chunk.text:
                    yield chunk.text
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def plan(self, messages: Messages, *, timeout_s: float | None = None, **constraints: Any) -> Any:
        request = self._sync.request(messages, **constraints)
        metadata = self._sync._metadata()
        return await self._retrying(lambda s: self._router.Plan(request, timeout=s, metadata=metadata), timeout_s)

    async def feedback(
        self,
        answer: Completion | str,
        rating: int | str = 0,
        *,
        regenerated: bool = False,
        comment: str = "",
        timeout_s: float | None = None,
    ) -> str:
        request = feedback_request(answer, rating, regenerated, comment)
        metadata = self._sync._metadata()
        ack = await self._retrying(lambda s: self._router.Feedback(request, timeout=s, metadata=metadata), timeout_s)
        return str(ack.event_id)

    async def _retrying(self, call: Callable[[float], Awaitable[T]], timeout_s: float | None) -> T:
        deadline = time.monotonic() + (timeout_s or self._sync.timeout_s)
        for attempt in range(self._sync.max_attempts):
            try:
                return await call(max(deadline - time.monotonic(), 0.001))
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
            pause = error.retry_after_s if error.retry_after_s is not None else random.uniform(0, 0.2 * 2**attempt)
            if not error.retryable or attempt == self._sync.max_attempts - 1 or time.monotonic() + pause >= deadline:
                raise error from None
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")
