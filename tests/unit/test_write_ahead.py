"""Every provider call is recorded before it is made (issue #37): the router writes an
`AttemptStarted` ahead of each call, and the ledger settles it: closed by the attempt's outcome,
or billed at its worst case, `unsettled`, once its deadline has passed with no outcome; an
outcome that comes later replaces that row exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message as ProtoMessage

from tests.unit.router_harness import CATALOG, RecordingPublisher, ScriptedBackend, serve_router
from tierlift.core import migrations
from tierlift.ledger import LedgerStore, make_engine, price_attempt
from tierlift.ledger._ingest import settle_started, started_row
from tierlift.router import Policy
from tierlift.router._attempts import worst_case_attempt
from tierlift.router._policy_source import PolicySource
from tierlift.v1 import adapter_pb2, common_pb2, events_pb2, router_pb2

STARTED, FINISHED = "tierlift.attempt.started", "tierlift.attempt.finished"


@dataclass
class Stalled(RecordingPublisher):
    """A bus that fails the first `failures` publishes on `subject` (a stall), then stores them."""

    subject: str = STARTED
    failures: int = 1_000_000

    async def publish(self, subject: str, event: ProtoMessage, event_id: str, ttl_s: float | None = None) -> None:
        if subject == self.subject and self.failures > 0:
            self.failures -= 1
            raise ConnectionError("nats stalled")
        await super().publish(subject, event, event_id, ttl_s)


async def eventually(check: Callable[[], bool], within_s: float = 5.0) -> None:
    give_up = asyncio.get_running_loop().time() + within_s
    while not check():
        assert asyncio.get_running_loop().time() < give_up, "not published in time"
        await asyncio.sleep(0.05)


def ask(**fields: Any) -> router_pb2.CompleteRequest:
    messages = [common_pb2.Message(role="user", content="Capital of France?")]
    return router_pb2.CompleteRequest(messages=messages, **{"tenant": "acme", "workload": "faq", **fields})


@pytest.fixture
async def low_confidence() -> AsyncIterator[tuple[Any, ScriptedBackend, ScriptedBackend, RecordingPublisher]]:
    local, closed = ScriptedBackend("llamacpp-local", token_prob=0.2), ScriptedBackend("openai")
    publisher = RecordingPublisher()
    policy = PolicySource(Policy(confidence_threshold=0.5))
    async with serve_router([local, closed], publisher=publisher, policy=policy, attempt_timeout_s=5) as router:
        yield router, local, closed, publisher


async def test_every_provider_call_is_written_ahead_under_its_attempts_event_id(low_confidence: Any) -> None:
    router, local, closed, publisher = low_confidence
    reply = await router.Complete(ask())
    assert len(local.calls) + len(closed.calls) == len(reply.attempts) == 2
    started = [e for s, e, _ in publisher.events if s == STARTED]
    billed = {a.event_id: a for a in publisher.attempts()}
    assert [s.attempt.event_id for s in started] == list(billed)  # one record ahead of each call, same id
    subjects = [s for s, _, _ in publisher.events]
    assert subjects.index(STARTED) < subjects.index(FINISHED)
    # the record is the request's routing on the bus: the plan it was routed by, before any call
    assert subjects[0] == STARTED and all(s.plan.request_id == reply.request_id for s in started)
    assert [r.model for r in started[0].plan.ladder][:2] == [a.model for a in reply.attempts]
    for s in started:
        worst, outcome = s.attempt.attempt, billed[s.attempt.event_id].attempt
        assert worst.outcome == router_pb2.OUTCOME_FAULT and not worst.usage_estimated
        assert (worst.model, worst.index) == (outcome.model, outcome.index)
        assert float(s.reserved_cost_usd) >= float(outcome.cost_usd) > 0  # the worst case covers the bill
        assert s.settle_after.ToDatetime(tzinfo=UTC) > datetime.now(UTC)


async def test_a_streamed_call_is_written_ahead_too(low_confidence: Any) -> None:
    router, _, _, publisher = low_confidence
    chunks = [c async for c in router.CompleteStream(ask())]
    assert chunks[-1].HasField("final")
    subjects = [s for s, _, _ in publisher.events]
    assert subjects[0] == STARTED


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_call_whose_adapter_dies_mid_call_is_left_unsettled_at_its_worst_case(streamed: bool) -> None:
    """The adapter took the call and its process went away (its server stopped with the call in
    flight): the provider may have billed it, so its outcome is not published; the ledger bills it
    from its write-ahead record, at its worst case, unsettled. The next rung answers."""
    local, closed = ScriptedBackend("llamacpp-local", delay_s=30.0), ScriptedBackend("openai")
    publisher = RecordingPublisher()
    policy = PolicySource(Policy(confidence_threshold=0.5))
    async with serve_router([local, closed], publisher=publisher, policy=policy, attempt_timeout_s=60) as router:
        call = asyncio.ensure_future(_stream_final(router, ask()) if streamed else router.Complete(ask(), timeout=60))
        await eventually(lambda: bool(local.calls))
        await router.adapter_servers["llamacpp-local"].stop(None)  # no status from it, ever
        reply = await call
    dead, answer = reply.attempts
    assert dead.unsettled and dead.outcome == router_pb2.OUTCOME_FAULT and "no status of its own" in dead.error
    [started] = [e for s, e, _ in publisher.events if s == STARTED and e.attempt.attempt.index == 0]
    assert dead.cost_usd == started.reserved_cost_usd != "0.000000000000"  # billed at its worst case
    assert dead.usage == started.attempt.attempt.usage
    assert [a.attempt.index for a in publisher.attempts()] == [1]  # its outcome left to the ledger
    assert reply.total_cost_usd == str(Decimal(dead.cost_usd) + Decimal(answer.cost_usd))


@dataclass
class Embedder(ScriptedBackend):
    """Makes vectors (the openai adapter's text-embedding-3-small), after `delay_s`."""

    async def embed(self, request: adapter_pb2.EmbeddingsRequest) -> adapter_pb2.EmbeddingsResponse:
        self.calls.append(request.model)
        await asyncio.sleep(self.delay_s)
        vectors = [common_pb2.Vector(values=[0.5, 0.5]) for _ in request.inputs]
        return adapter_pb2.EmbeddingsResponse(vectors=vectors, usage=common_pb2.Usage(input_tokens=3))


@pytest.mark.parametrize("dies", [False, True])
async def test_an_embedding_call_is_written_ahead_and_one_whose_adapter_dies_is_left_unsettled(dies: bool) -> None:
    embedder, publisher = Embedder("openai", delay_s=30.0 if dies else 0.0), RecordingPublisher()
    request = router_pb2.EmbedRequest(tenant="acme", workload="faq", inputs=["hello", "world"])
    policy = PolicySource(Policy())
    async with serve_router([embedder], publisher=publisher, policy=policy, attempt_timeout_s=60) as router:
        call = asyncio.ensure_future(router.Embed(request, timeout=60))
        if dies:
            await eventually(lambda: bool(embedder.calls))
            await router.adapter_servers["openai"].stop(None)
            with pytest.raises(grpc.aio.AioRpcError):
                await call
        else:
            await call
    started = [e for s, e, _ in publisher.events if s == STARTED]
    assert started and all(s.attempt.attempt.usage.output_tokens == 0 for s in started)  # inputs only
    subjects = [s for s, _, _ in publisher.events]
    assert subjects.index(STARTED) < subjects.index(
        "tierlift.request.settled" if not dies else "tierlift.request.completed"
    )
    billed = {a.event_id for a in publisher.attempts()}
    first = started[0].attempt.event_id
    assert (first in billed) is not dies  # a dead adapter's call: billed from its record, unsettled


@pytest.mark.parametrize("leaves", ["cancels", "deadline passes"])
async def test_an_embedding_call_whose_caller_leaves_finishes_and_is_billed(leaves: str) -> None:
    embedder, publisher = Embedder("openai", delay_s=0.5), RecordingPublisher()
    request = router_pb2.EmbedRequest(tenant="acme", workload="faq", inputs=["hello", "world"])
    async with serve_router(
        [embedder], publisher=publisher, policy=PolicySource(Policy()), attempt_timeout_s=60
    ) as router:
        call = router.Embed(request, timeout=0.2 if leaves == "deadline passes" else 60)
        await eventually(lambda: bool(embedder.calls))
        if leaves == "cancels":
            call.cancel()
        with pytest.raises((grpc.aio.AioRpcError, asyncio.CancelledError)):
            await call
        await eventually(lambda: any(s == "tierlift.request.completed" for s, _, _ in publisher.events))
    [attempt] = publisher.attempts()
    assert attempt.attempt.error.startswith("CANCELLED: the caller gave up")
    assert attempt.attempt.usage.input_tokens == 3 and Decimal(attempt.attempt.cost_usd) > 0
    [completed] = [e for s, e, _ in publisher.events if s == "tierlift.request.completed"]
    assert not completed.answered and "the caller gave up" in completed.error
    assert completed.total_cost_usd == attempt.attempt.cost_usd


async def _stream_final(router: Any, request: router_pb2.CompleteRequest) -> router_pb2.CompleteResponse:
    async for chunk in router.CompleteStream(request, timeout=60):
        if chunk.HasField("final"):
            return chunk.final
    raise AssertionError("no final chunk")


@pytest.mark.parametrize("how", ["its own status", "nothing listening"])
async def test_a_call_the_adapter_ended_itself_or_never_took_is_closed_at_no_cost(how: str) -> None:
    local, closed = ScriptedBackend("llamacpp-local", fail_with=grpc.StatusCode.UNAVAILABLE), ScriptedBackend("openai")
    publisher = RecordingPublisher()
    policy = PolicySource(Policy(confidence_threshold=0.5))
    async with serve_router([local, closed], publisher=publisher, policy=policy, attempt_timeout_s=5) as router:
        if how == "nothing listening":
            await router.adapter_servers["llamacpp-local"].stop(None)
        reply = await router.Complete(ask(), timeout=30)
    failed = reply.attempts[0]
    assert failed.outcome == router_pb2.OUTCOME_FAULT and not failed.unsettled
    assert Decimal(failed.cost_usd) == 0
    assert [a.attempt.index for a in publisher.attempts()] == [0, 1]  # its outcome published: closes the record


async def test_a_call_that_could_not_be_written_ahead_is_never_made_and_is_closed_at_no_cost() -> None:
    local, closed = ScriptedBackend("llamacpp-local"), ScriptedBackend("openai")
    publisher = Stalled(failures=3)  # the record's three tries fail; the bus is back a moment later
    async with serve_router([local, closed], publisher=publisher, policy=PolicySource(Policy())) as router:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await router.Complete(ask())
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert local.calls == closed.calls == []
        # a stalled bus may have stored the record unacknowledged: it is closed, at no cost
        await eventually(lambda: len(publisher.attempts()) == 1)
    [closing] = publisher.attempts()
    assert closing.attempt.outcome == router_pb2.OUTCOME_FAULT and float(closing.attempt.cost_usd or 0) == 0
    assert "not called" in closing.attempt.reason
    assert not any(s == "tierlift.request.settled" for s, _, _ in publisher.events)


async def test_an_answer_whose_outcome_the_bus_stalls_on_reaches_the_caller_and_is_billed_as_answered() -> None:
    local, closed = ScriptedBackend("llamacpp-local"), ScriptedBackend("openai")
    publisher = Stalled(subject="tierlift.request.settled", failures=3)
    async with serve_router([local, closed], publisher=publisher, policy=PolicySource(Policy())) as router:
        reply = await router.Complete(ask())  # the call was written ahead: its cost is on the books
        assert reply.text and local.calls == [reply.model]
        await eventually(lambda: bool(publisher.completions()))
    [completed] = publisher.completions()
    assert completed.answered and completed.request_id == reply.request_id  # billed as what the caller got


async def test_a_retry_after_a_failed_run_bills_its_own_provider_calls() -> None:
    local, closed = ScriptedBackend("llamacpp-local"), ScriptedBackend("openai")
    publisher = RecordingPublisher()
    async with serve_router([local, closed], publisher=publisher, policy=PolicySource(Policy())) as router:
        local.fail_with = closed.fail_with = grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError):
            await router.Complete(ask(idempotency_key="k-1"))
        failed = {a.event_id for a in publisher.attempts()}
        local.fail_with = closed.fail_with = None
        reply = await router.Complete(ask(idempotency_key="k-1"))
        again = await router.Complete(ask(idempotency_key="k-1"))  # answered: replayed, no call
    answered = {a.event_id for a in publisher.attempts()} - failed
    assert again == reply and len(local.calls) + len(closed.calls) == len(failed) + 1
    assert len(answered) == 1 and all(a.request_id == reply.request_id for a in publisher.attempts())


# --- the ledger's settlement -------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerStore]:
    url = f"sqlite:///{tmp_path_factory.mktemp('started') / 'ledger.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    yield LedgerStore(engine)
    engine.dispose()


MODEL = "gpt-5-mini"
NOW = datetime.now(UTC)


def started(tenant: str, settle_after: datetime) -> events_pb2.AttemptStarted:
    model = CATALOG.get(MODEL)
    assert model is not None
    rung = router_pb2.Rung(model=MODEL, tier=model.tier_value, adapter=model.adapter)
    request = ask(tenant=tenant, params=common_pb2.GenerationParams(max_tokens=1000))
    worst = worst_case_attempt(0, rung, request, CATALOG)
    finished = events_pb2.AttemptFinished(
        event_id=f"{tenant}.r.attempt.0", request_id=f"{tenant}.r", tenant=tenant, workload="faq", attempt=worst
    )
    finished.occurred_at.FromDatetime(NOW)
    event = events_pb2.AttemptStarted(event_id=f"{finished.event_id}.started", attempt=finished)
    event.occurred_at.FromDatetime(NOW)
    event.settle_after.FromDatetime(settle_after)
    return event


def outcome(start: events_pb2.AttemptStarted) -> events_pb2.AttemptFinished:
    finished = events_pb2.AttemptFinished()
    finished.CopyFrom(start.attempt)
    worst = start.attempt.attempt
    usage = common_pb2.Usage(input_tokens=30, output_tokens=9)
    answered = router_pb2.Attempt(model=MODEL, tier=worst.tier, adapter=worst.adapter, usage=usage)
    answered.outcome = router_pb2.OUTCOME_ANSWERED
    finished.attempt.CopyFrom(answered)
    return finished


def books(store: LedgerStore, tenant: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    return store.attempts_for(f"{tenant}.r"), store.spend(tenant, "", None, None), store.daily(tenant, "", None, None)


def settle(store: LedgerStore, at: datetime) -> tuple[int, set[tuple[str, str]]]:
    return settle_started(store, CATALOG, at)


def test_a_started_call_that_finishes_is_billed_once_from_its_outcome(store: LedgerStore) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    start = started(tenant, NOW + timedelta(seconds=30))
    store.insert_started([started_row(start.SerializeToString(), CATALOG)])
    store.insert_attempts([price_attempt(outcome(start), CATALOG)])
    assert settle(store, NOW + timedelta(hours=1))[0] == 0  # due, and it has its outcome: closed
    [row], [line], [day] = books(store, tenant)
    assert (row["outcome"], row["unsettled"], line["unsettled_attempts"]) == ("ANSWERED", False, 0)
    assert day["attempts"] == 1 and day["cost_usd"] == row["cost_usd"]
    assert start.attempt.event_id not in {d["event_id"] for d in store.due_started(NOW + timedelta(days=1))}


def test_every_call_due_is_closed_in_one_round_however_many_fell_due(store: LedgerStore) -> None:
    """A round of settlement took the 1,000 oldest calls due and stopped: a ledger taking more than
    100 calls a second (a round each 10 s) fell further behind each round, its write-ahead table
    grew without end, and a dead router's calls were billed later and later. A round now closes
    every call due, a batch at a time; here 2,100 of them, the calls with no outcome the newest."""
    run = uuid.uuid4().hex[:8]
    starts = [started(f"t{run}-{i}", NOW + timedelta(seconds=30) + timedelta(microseconds=i)) for i in range(2100)]
    store.insert_started([started_row(s.SerializeToString(), CATALOG) for s in starts])
    lost = {s.attempt.tenant for s in starts[-3:]}  # the newest: beyond the first 1,000 due
    store.insert_attempts([price_attempt(outcome(s), CATALOG) for s in starts if s.attempt.tenant not in lost])
    billed, grew = settle(store, NOW + timedelta(hours=1))
    assert billed >= 3 and {t for t, _ in grew} >= lost
    assert store.due_started(NOW + timedelta(hours=1)) == []
    for tenant in lost:
        [row], _, _ = books(store, tenant)
        assert (row["unsettled"], row["outcome"]) == (True, "FAULT")


def test_a_started_call_with_no_outcome_is_billed_unsettled_at_its_worst_case_then_replaced_once(
    store: LedgerStore,
) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    start = started(tenant, NOW + timedelta(seconds=30))
    store.insert_started([started_row(start.SerializeToString(), CATALOG)])
    store.insert_started([started_row(start.SerializeToString(), CATALOG)])  # redelivered: once
    assert settle(store, NOW)[0] == 0 and books(store, tenant)[0] == []  # not due yet: nothing billed
    billed, grew = settle(store, NOW + timedelta(minutes=5))
    assert billed >= 1 and (tenant, "faq") in grew
    [row], [line], [day] = books(store, tenant)
    worst = price_attempt(start.attempt, CATALOG)["cost_usd"]
    assert (row["unsettled"], row["outcome"], row["cost_usd"], line["unsettled_attempts"]) == (True, "FAULT", worst, 1)
    assert (day["attempts"], day["cost_usd"]) == (1, worst)
    assert settle(store, NOW + timedelta(minutes=10))[0] == 0  # settled once: the started record is gone

    late = price_attempt(outcome(start), CATALOG)
    assert store.insert_attempts([late]) == {(tenant, "faq")}  # the outcome, late: it replaces the worst case
    [row], [line], [day] = books(store, tenant)
    assert (row["unsettled"], row["outcome"], row["cost_usd"], line["unsettled_attempts"]) == (
        False, "ANSWERED", late["cost_usd"], 0)  # fmt: skip
    assert (day["attempts"], day["cost_usd"], day["input_tokens"]) == (1, late["cost_usd"], 30)
    # replayed (or inside a settled request): changes nothing
    assert store.insert_attempts([late]) == set()
    assert store.insert_settled([{"attempts": [late], "request": _request(tenant, late)}]) == set()
    [row], _, [day] = books(store, tenant)
    assert (day["attempts"], day["cost_usd"], row["cost_usd"]) == (1, late["cost_usd"], late["cost_usd"])


def test_an_outcome_stored_before_its_started_record_is_never_billed_twice(store: LedgerStore) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    start = started(tenant, NOW + timedelta(seconds=30))
    store.insert_attempts([price_attempt(outcome(start), CATALOG)])  # the two durables race
    store.insert_started([started_row(start.SerializeToString(), CATALOG)])
    settle(store, NOW + timedelta(minutes=5))
    [row], _, [day] = books(store, tenant)
    assert (row["unsettled"], day["attempts"]) == (False, 1)


def _request(tenant: str, attempt: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": attempt["request_id"], "event_id": f"{attempt['request_id']}.completed", "tenant": tenant,
        "workload": "faq", "answered": True, "final_tier": attempt["tier"], "final_model": MODEL, "attempt_count": 1,
        "escalated": False, "total_cost_usd": attempt["cost_usd"], "occurred_at": NOW, "error": "",
        "prompt_sha256": "", "regenerated": False, "rollout_id": "", "arm": "", "prompt_form": "",
    }  # fmt: skip
