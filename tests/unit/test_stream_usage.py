"""Answers are never free: an answer or a stream without the provider's usage (none sent, the
stream cut, the caller left) is billed from counted tokens with `usage_estimated` set, and a usage
that arrives after the caller left replaces the estimate in the ledger exactly once, never a
reported row."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.router_harness import CATALOG, RecordingPublisher, ScriptedBackend, serve_router
from tierlift.adapters import BackendError, signals_from_logprobs
from tierlift.core import migrations
from tierlift.core.bus import PoisonEvent
from tierlift.core.tokens import estimate_tokens
from tierlift.ledger import LedgerStore, make_engine, price_attempt
from tierlift.ledger._ingest import usage_report_row
from tierlift.router import Policy
from tierlift.router._policy_source import PolicySource
from tierlift.router._stream_usage import bill_estimate, estimated_usage, prompt_text
from tierlift.v1 import adapter_pb2, common_pb2, events_pb2, router_pb2

PIECES = ["The answer", " is", " 42."]
REPORTED = common_pb2.Usage(input_tokens=100, output_tokens=20)


@dataclass
class StreamingBackend(ScriptedBackend):
    """Streams PIECES, then after `usage_delay_s` a final chunk with `usage` (empty: the provider
    sends none); with `die_after` set, fails after that many pieces."""

    usage: common_pb2.Usage | None = None
    usage_delay_s: float = 0.0
    die_after: int | None = None

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        self.calls.append(request.model)
        for i, piece in enumerate(PIECES):
            if i == self.die_after:
                raise BackendError(grpc.StatusCode.UNAVAILABLE, "provider dropped the connection")
            yield adapter_pb2.GenerateChunk(text=piece)
        await asyncio.sleep(self.usage_delay_s)
        summary = adapter_pb2.GenerateResponse(
            text="".join(PIECES), finish_reason="stop", confidence=signals_from_logprobs([math.log(0.9)] * 5)
        )
        if self.usage is not None:
            summary.usage.CopyFrom(self.usage)
        yield adapter_pb2.GenerateChunk(final=True, summary=summary)


def ask() -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant="acme", workload="faq", messages=[common_pb2.Message(role="user", content="What is six times seven?")]
    )


def price(model_id: str, usage: common_pb2.Usage) -> Decimal:
    model = CATALOG.get(model_id)
    assert model is not None
    return model.usage_cost(usage).total


@pytest.fixture
async def routed() -> AsyncIterator[tuple[Any, StreamingBackend, RecordingPublisher]]:
    local, publisher = StreamingBackend("llamacpp-local"), RecordingPublisher()
    async with serve_router(
        [local, ScriptedBackend("openai")],
        publisher=publisher,
        policy=PolicySource(Policy(confidence_threshold=0.5)),
        attempt_timeout_s=5,
        late_usage_s=2.0,
    ) as router:
        yield router, local, publisher


# --- the estimate ------------------------------------------------------------------------------


def test_the_estimate_counts_the_request_and_the_text_streamed() -> None:
    request = ask()
    request.params.tools.add(name="calculator", parameters='{"type": "object"}')
    usage = estimated_usage(request, "The answer is 42.")
    assert usage.input_tokens == estimate_tokens(prompt_text(request)) > estimate_tokens("What is six times seven?")
    assert usage.output_tokens == estimate_tokens("The answer is 42.") == 5
    assert estimated_usage(request, "").output_tokens == 0  # nothing streamed: no output billed


def test_an_estimated_attempt_is_priced_in_decimal_and_says_so() -> None:
    attempt = router_pb2.Attempt(model="gpt-5-mini", outcome=router_pb2.OUTCOME_FAULT)
    bill_estimate(attempt, ask(), "The answer is 42.", CATALOG)
    assert attempt.usage_estimated
    assert Decimal(attempt.cost_usd) == price("gpt-5-mini", attempt.usage) > 0


# --- the router --------------------------------------------------------------------------------


async def test_a_stream_without_usage_is_billed_from_counted_tokens(routed: Any) -> None:
    router, local, publisher = routed
    local.usage = None  # the provider sends no usage
    chunks = [c async for c in router.CompleteStream(ask())]
    final = chunks[-1].final
    [attempt] = final.attempts
    assert attempt.usage_estimated and attempt.outcome == router_pb2.OUTCOME_ANSWERED
    assert attempt.usage == estimated_usage(ask(), "".join(PIECES))
    assert Decimal(final.total_cost_usd) == Decimal(attempt.cost_usd) == price(attempt.model, attempt.usage) > 0
    [published] = publisher.attempts()
    assert published.attempt == attempt


@dataclass
class Unreported(ScriptedBackend):
    """Answers whole, and its provider reports no usage."""

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        reply = await super().generate(request)
        reply.ClearField("usage")
        return reply


async def test_an_answer_without_usage_is_billed_from_counted_tokens_too() -> None:
    local, publisher = Unreported("llamacpp-local"), RecordingPublisher()
    policy = PolicySource(Policy(confidence_threshold=0.5))
    async with serve_router([local, ScriptedBackend("openai")], publisher=publisher, policy=policy) as router:
        reply = await router.Complete(ask())
    [attempt] = reply.attempts
    assert attempt.usage_estimated and attempt.usage == estimated_usage(ask(), reply.text)
    assert Decimal(reply.total_cost_usd) == Decimal(attempt.cost_usd) == price(attempt.model, attempt.usage) > 0
    [published] = publisher.attempts()
    assert published.attempt == attempt


async def test_a_stream_with_usage_is_billed_as_reported(routed: Any) -> None:
    router, local, _ = routed
    local.usage = REPORTED
    chunks = [c async for c in router.CompleteStream(ask())]
    [attempt] = chunks[-1].final.attempts
    assert not attempt.usage_estimated and attempt.usage == REPORTED


async def test_an_adapter_that_dies_mid_stream_bills_what_came(routed: Any) -> None:
    router, local, publisher = routed
    local.die_after = 2
    chunks = [c async for c in router.CompleteStream(ask())]
    assert chunks[-1].final.model == "gpt-5-mini"  # the next rung answered
    faulted = publisher.attempts()[0].attempt
    assert faulted.outcome == router_pb2.OUTCOME_FAULT and faulted.usage_estimated
    assert faulted.usage.output_tokens == estimate_tokens("".join(PIECES[:2]))
    assert Decimal(faulted.cost_usd) == price(faulted.model, faulted.usage) > 0


async def _cut_after_the_text(router: Any) -> str:
    call = router.CompleteStream(ask())
    seen = [chunk async for chunk in _first(call, len(PIECES))]
    call.cancel()
    return str(seen[0].request_id)


async def _first(call: Any, n: int) -> AsyncIterator[router_pb2.CompleteChunk]:
    count = 0
    async for chunk in call:
        yield chunk
        count += 1
        if count == n:
            return


async def _published(publisher: RecordingPublisher, subject: str, within_s: float = 5.0) -> list[Any]:
    for _ in range(int(within_s / 0.05)):
        found = [event for s, event, _ in publisher.events if s == subject]
        if found:
            return found
        await asyncio.sleep(0.05)
    return []


async def test_a_stream_the_caller_cuts_is_estimated_then_replaced_by_the_late_usage(routed: Any) -> None:
    router, local, publisher = routed
    local.usage, local.usage_delay_s = REPORTED, 0.5  # the usage comes after the caller has left
    await _cut_after_the_text(router)
    [cut] = await _published(publisher, "tierlift.attempt.finished")
    assert cut.attempt.usage_estimated and cut.attempt.error.startswith("CANCELLED: the caller left mid-stream")
    assert cut.attempt.usage == estimated_usage(ask(), "".join(PIECES))
    assert Decimal(cut.attempt.cost_usd) == price(cut.attempt.model, cut.attempt.usage) > 0
    [completed] = publisher.completions()
    assert not completed.answered and Decimal(completed.total_cost_usd) == Decimal(cut.attempt.cost_usd)
    [report] = await _published(publisher, "tierlift.attempt.usage")
    assert report.event_id == f"{cut.event_id}.usage" and report.attempt.event_id == cut.event_id
    assert report.attempt.occurred_at == cut.occurred_at and not report.attempt.attempt.usage_estimated
    assert report.attempt.attempt.usage == REPORTED
    assert Decimal(report.attempt.attempt.cost_usd) == price(cut.attempt.model, REPORTED)


async def test_a_usage_that_never_comes_leaves_the_estimate(routed: Any) -> None:
    router, local, publisher = routed
    local.usage, local.usage_delay_s = REPORTED, 30.0  # past late_usage_s
    await _cut_after_the_text(router)
    [cut] = await _published(publisher, "tierlift.attempt.finished")
    assert cut.attempt.usage_estimated
    await asyncio.sleep(2.5)  # late_usage_s has passed: the router gave the stream up
    assert [s for s, _, _ in publisher.events if s == "tierlift.attempt.usage"] == []


# --- the ledger --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerStore]:
    url = f"sqlite:///{tmp_path_factory.mktemp('estimates') / 'ledger.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    yield LedgerStore(engine)
    engine.dispose()


MODEL = "gpt-5-mini"


def finished(tenant: str, usage: common_pb2.Usage, estimated: bool) -> events_pb2.AttemptFinished:
    model = CATALOG.get(MODEL)
    assert model is not None
    event = events_pb2.AttemptFinished(
        event_id=f"{tenant}.r.attempt.0", request_id=f"{tenant}.r", tenant=tenant, workload="chat",
        attempt=router_pb2.Attempt(model=MODEL, tier=model.tier_value, adapter=model.adapter, usage=usage,
                                   outcome=router_pb2.OUTCOME_FAULT, usage_estimated=estimated),
    )  # fmt: skip
    event.occurred_at.FromDatetime(datetime(2026, 12, 7, 9, tzinfo=UTC))
    return event


def report(estimate: events_pb2.AttemptFinished, usage: common_pb2.Usage) -> bytes:
    event = events_pb2.AttemptUsage(event_id=f"{estimate.event_id}.usage")
    event.attempt.CopyFrom(estimate)
    event.attempt.attempt.usage.CopyFrom(usage)
    event.attempt.attempt.usage_estimated = False
    return event.SerializeToString()


def books(store: LedgerStore, tenant: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The tenant's one attempt row, its spend lines and its daily rollups."""
    [row] = store.attempts_for(f"{tenant}.r")
    return row, store.spend(tenant, "", None, None), store.daily(tenant, "", None, None)


def assert_billed(store: LedgerStore, tenant: str, usage: common_pb2.Usage, estimated: bool) -> None:
    row, [line], [day] = books(store, tenant)
    cost = price(MODEL, usage)
    assert (row["input_tokens"], row["output_tokens"], row["cost_usd"], row["estimated"]) == (
        usage.input_tokens, usage.output_tokens, cost, estimated)  # fmt: skip
    assert line["cost_usd"] == day["cost_usd"] == cost and line["attempts"] == day["attempts"] == 1
    assert line["estimated_attempts"] == (1 if estimated else 0)
    assert (day["input_tokens"], day["output_tokens"]) == (usage.input_tokens, usage.output_tokens)


def test_a_usage_report_replaces_an_estimated_row_exactly_once(store: LedgerStore) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    estimate = finished(tenant, common_pb2.Usage(input_tokens=7, output_tokens=5), estimated=True)
    store.insert_attempts([price_attempt(estimate, CATALOG)])
    assert_billed(store, tenant, estimate.attempt.usage, estimated=True)
    assert store.correct_attempts([usage_report_row(report(estimate, REPORTED), CATALOG)]) == {(tenant, "chat")}
    assert_billed(store, tenant, REPORTED, estimated=False)
    # the same report again, or another one: the row is reported now, and stays as it is
    other = common_pb2.Usage(input_tokens=1, output_tokens=1)
    assert store.correct_attempts([usage_report_row(report(estimate, REPORTED), CATALOG)]) == set()
    store.correct_attempts([usage_report_row(report(estimate, other), CATALOG)])
    assert_billed(store, tenant, REPORTED, estimated=False)


def test_a_reported_row_is_never_overwritten(store: LedgerStore) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    reported = finished(tenant, REPORTED, estimated=False)
    store.insert_attempts([price_attempt(reported, CATALOG)])
    store.correct_attempts([usage_report_row(report(reported, common_pb2.Usage(input_tokens=3)), CATALOG)])
    assert_billed(store, tenant, REPORTED, estimated=False)


def test_a_report_before_its_attempt_is_stored_as_the_attempt(store: LedgerStore) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    estimate = finished(tenant, common_pb2.Usage(input_tokens=7, output_tokens=5), estimated=True)
    store.correct_attempts([usage_report_row(report(estimate, REPORTED), CATALOG)])
    store.insert_attempts([price_attempt(estimate, CATALOG)])  # the estimate, late: its event id is stored
    assert_billed(store, tenant, REPORTED, estimated=False)


def test_a_usage_report_must_carry_reported_usage() -> None:
    estimate = finished("t", REPORTED, estimated=True)
    event = events_pb2.AttemptUsage(event_id="x.usage", attempt=estimate)
    with pytest.raises(PoisonEvent, match="usage_estimated"):
        usage_report_row(event.SerializeToString(), CATALOG)


usages = st.builds(
    lambda i, o, cached, reasoning: common_pb2.Usage(input_tokens=i, output_tokens=o, cache_read_input_tokens=cached,
                                                      reasoning_output_tokens=reasoning),
    st.integers(0, 2**24), st.integers(0, 2**24), st.integers(0, 2**24), st.integers(0, 2**24),
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(estimate=usages, reports=st.lists(usages, min_size=1, max_size=4), replays=st.integers(0, 2))
def test_the_first_report_replaces_the_estimate_whatever_follows(
    store: LedgerStore, estimate: common_pb2.Usage, reports: list[common_pb2.Usage], replays: int
) -> None:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    first = finished(tenant, estimate, estimated=True)
    store.insert_attempts([price_attempt(first, CATALOG)])
    for usage in reports:
        for _ in range(1 + replays):  # redelivered: applied once
            store.correct_attempts([usage_report_row(report(first, usage), CATALOG)])
    store.insert_attempts([price_attempt(first, CATALOG)])  # the estimate redelivered: stored once
    row, [line], [day] = books(store, tenant)
    want = price_attempt(finished(tenant, reports[0], estimated=False), CATALOG)
    for name in ("input_tokens", "output_tokens", "cost_usd", "cache_read_input_tokens", "reasoning_cost_usd"):
        assert row[name] == want[name] == line[name] == day[name]
    assert not row["estimated"] and day["attempts"] == 1
