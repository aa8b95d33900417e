"""The router's ladder walk over real gRPC (in-process servers) with scripted backends, so
escalation and fallback can be forced. The real model is exercised in tests/integration."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import grpc
import nats.errors
import pytest

from tests.unit.router_harness import RecordingPublisher, ScriptedBackend, serve_router
from tierlift.router import Policy
from tierlift.router._budgets import BudgetBook
from tierlift.router._fair_share import TenantLimits
from tierlift.router._idempotency import MemoryKeys, SingleFlight
from tierlift.router._policy_source import PolicySource
from tierlift.v1 import (
    common_pb2,
    events_pb2,
    router_pb2,
    router_pb2_grpc,
)


@dataclass
class Harness:
    router: router_pb2_grpc.RouterStub
    local: ScriptedBackend
    closed: ScriptedBackend
    publisher: RecordingPublisher
    budgets: BudgetBook
    policy: PolicySource


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    local, closed = ScriptedBackend("llamacpp-local"), ScriptedBackend("openai")
    publisher, budgets = RecordingPublisher(), BudgetBook()
    policy = PolicySource(Policy(confidence_threshold=0.5))
    async with serve_router(
        [local, closed],
        publisher=publisher,
        policy=policy,
        circuit_threshold=3,
        budgets=budgets,
        attempt_timeout_s=5,
    ) as router:
        yield Harness(router, local, closed, publisher, budgets, policy)


def ask(text: str = "What is the capital of France?", **fields: object) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        workload="faq",
        messages=[common_pb2.Message(role="user", content=text)],
        **{"tenant": "acme", **fields},  # type: ignore[arg-type]
    )


async def test_confident_local_answer_is_accepted_without_escalation(harness: Harness) -> None:
    reply = await harness.router.Complete(ask())
    assert reply.tier == common_pb2.TIER_LOCAL
    assert [a.outcome for a in reply.attempts] == [router_pb2.OUTCOME_ANSWERED]
    assert harness.closed.calls == []


async def test_low_confidence_escalates_one_rung_up(harness: Harness) -> None:
    harness.local.token_prob = 0.2
    reply = await harness.router.Complete(ask())
    assert [a.outcome for a in reply.attempts] == [
        router_pb2.OUTCOME_LOW_CONFIDENCE,
        router_pb2.OUTCOME_ANSWERED,
    ]
    assert reply.model == "gpt-5-mini"
    assert harness.closed.calls == ["gpt-5-mini"]
    subjects = [s for s, _, _ in harness.publisher.events]
    # each provider call written ahead of it (the first with the plan: one publish before any
    # money is spent); the escalated attempt alone as it ended; the answering one with the
    # request's outcome
    assert subjects == [
        "tierlift.attempt.started",
        "tierlift.attempt.finished",
        "tierlift.attempt.started",
        "tierlift.request.settled",
    ]
    [settled] = [e for s, e, _ in harness.publisher.events if s == "tierlift.request.settled"]
    assert [a.attempt.index for a in settled.attempts] == [1]  # type: ignore[attr-defined]
    assert settled.completed.answered and settled.completed.attempt_count == 2  # type: ignore[attr-defined]


async def test_fault_falls_back_to_the_next_rung_and_both_attempts_are_reported(harness: Harness) -> None:
    harness.local.fail_with = grpc.StatusCode.UNAVAILABLE
    reply = await harness.router.Complete(ask())
    assert [a.outcome for a in reply.attempts] == [router_pb2.OUTCOME_FAULT, router_pb2.OUTCOME_ANSWERED]
    assert "UNAVAILABLE" in reply.attempts[0].error
    assert [e.attempt.index for e in harness.publisher.attempts()] == [0, 1]


async def test_regulated_request_never_reaches_external_tier_even_when_local_fails(harness: Harness) -> None:
    harness.local.fail_with = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask("Refund card 4111 1111 1111 1111 please"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "llamacpp-local" in (err.value.details() or "")
    assert harness.closed.calls == []


async def test_every_rung_down_is_unavailable_naming_each_adapter(harness: Harness) -> None:
    harness.local.fail_with = harness.closed.fail_with = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "llamacpp-local" in (err.value.details() or "") and "openai" in (err.value.details() or "")
    completed = harness.publisher.completions()
    assert len(completed) == 1 and not completed[0].answered


async def test_a_finished_request_is_replayed_not_run_again(harness: Harness) -> None:
    first = await harness.router.Complete(ask(idempotency_key="order-42"))
    second = await harness.router.Complete(ask(idempotency_key="order-42"))
    assert second == first
    assert len(harness.local.calls) == 1
    # the run's attempts are billed under ids of its own (a run after a failed one is billed apart)
    assert [e.event_id for e in harness.publisher.attempts()] == [
        f"{first.request_id}.{first.plan.execution_id}.attempt.0"
    ]


async def test_concurrent_duplicates_wait_for_the_first_call_and_share_its_answer(harness: Harness) -> None:
    harness.local.delay_s = 0.3
    replies = await asyncio.gather(*(harness.router.Complete(ask(idempotency_key="k-1")) for _ in range(10)))
    assert len(harness.local.calls) == 1
    assert all(r == replies[0] for r in replies)
    stream = [c async for c in harness.router.CompleteStream(ask(idempotency_key="k-1"))]
    assert stream[-1].final == replies[0] and len(harness.local.calls) == 1


async def test_a_key_reused_for_another_request_is_refused_by_name(harness: Harness) -> None:
    await harness.router.Complete(ask("What is 2 + 2?", idempotency_key="k-2"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask("What is 3 + 3?", idempotency_key="k-2"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("idempotency_key: ")
    assert len(harness.local.calls) == 1


async def test_a_failed_request_releases_its_key_so_a_retry_runs(harness: Harness) -> None:
    harness.local.fail_with = harness.closed.fail_with = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError):
        await harness.router.Complete(ask(idempotency_key="k-3"))
    harness.local.fail_with = harness.closed.fail_with = None
    reply = await harness.router.Complete(ask(idempotency_key="k-3"))
    assert reply.tier == common_pb2.TIER_LOCAL


async def test_answer_is_refused_when_its_cost_cannot_be_recorded(harness: Harness) -> None:
    harness.publisher.broken = True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "event bus" in (err.value.details() or "")


async def test_plan_calls_no_model(harness: Harness) -> None:
    plan = await harness.router.Plan(ask())
    assert [r.model for r in plan.ladder][:2] == ["gemma-3-270m-cpu", "gpt-5-mini"]
    assert harness.local.calls == [] and harness.closed.calls == []
    assert harness.publisher.events == []


async def test_stream_sends_text_then_a_final_chunk_with_the_story(harness: Harness) -> None:
    chunks = [c async for c in harness.router.CompleteStream(ask())]
    assert chunks[0].text == "answer from gemma-3-270m-cpu"
    assert chunks[-1].final.model == "gemma-3-270m-cpu"
    assert chunks[-1].final.attempts[0].outcome == router_pb2.OUTCOME_ANSWERED
    assert chunks[-1].final.total_cost_usd == chunks[-1].final.attempts[0].cost_usd


async def test_open_circuit_skips_a_failing_adapter_without_calling_it(harness: Harness) -> None:
    harness.local.fail_with = grpc.StatusCode.UNAVAILABLE
    for _ in range(3):
        await harness.router.Complete(ask())
    assert len(harness.local.calls) == 3
    reply = await harness.router.Complete(ask())
    assert len(harness.local.calls) == 3  # not called again while the circuit is open
    assert reply.attempts[0].error.startswith(
        "UNAVAILABLE: circuit open for gemma-3-270m-cpu on adapter llamacpp-local"
    )
    assert reply.model == "gpt-5-mini"


async def test_one_failing_model_does_not_open_the_circuit_of_its_neighbour_on_the_same_adapter(
    harness: Harness,
) -> None:
    # gpt-5-mini and gpt-5 are both behind the `openai` adapter; only gpt-5-mini is sick
    harness.closed.fail_with, harness.closed.failing_models = grpc.StatusCode.UNAVAILABLE, {"gpt-5-mini"}
    closed_only = router_pb2.Constraints(allowed_tiers=[common_pb2.TIER_CLOSED])
    for _ in range(4):  # opens gpt-5-mini's circuit (threshold 3)
        with pytest.raises(grpc.aio.AioRpcError):
            await harness.router.Complete(ask(constraints=closed_only))
    assert harness.closed.calls.count("gpt-5-mini") == 3
    frontier_only = router_pb2.Constraints(allowed_tiers=[common_pb2.TIER_FRONTIER])
    for _ in range(5):
        reply = await harness.router.Complete(ask(constraints=frontier_only))
        assert (reply.model, reply.attempts[0].error) == ("gpt-5", "")
    assert harness.closed.calls.count("gpt-5") == 5


async def test_no_attempt_outlives_the_callers_deadline(harness: Harness) -> None:
    harness.local.delay_s = harness.closed.delay_s = 5.0
    started = asyncio.get_running_loop().time()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask(), timeout=0.5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert asyncio.get_running_loop().time() - started < 5.0


async def test_the_router_stops_working_when_the_callers_deadline_passes(harness: Harness) -> None:
    # The client's own timeout guarantees the caller returns in time; the router must also stop
    # (gRPC cancels the handler at the deadline; a router that shielded its ladder walk from that
    # would fall back to the closed tier once LOCAL failed).
    # the deadline leaves room to classify on a loaded machine and passes while LOCAL is working
    harness.local.delay_s, harness.local.fail_with = 2.0, grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask(), timeout=0.8)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.sleep(2.5)  # time for a misbehaving router to reach the next rung (a wait, not a measurement)
    assert harness.local.calls == ["gemma-3-270m-cpu"]
    assert harness.closed.calls == []


def exhausted(action: str, workload: str = "", period: str = "month") -> events_pb2.BudgetState:
    return events_pb2.BudgetState(tenant="acme", workload=workload, period=period, state="hard_exceeded",
                                  action=action, spent_usd="10.5", limit_usd="10")  # fmt: skip


async def test_exhausted_local_only_budget_closes_paid_tiers(harness: Harness) -> None:
    harness.budgets.apply(exhausted("local_only"))
    harness.local.token_prob = 0.2  # would escalate, but there is nowhere paid to go
    reply = await harness.router.Complete(ask())
    assert [a.model for a in reply.attempts] == ["gemma-3-270m-cpu"]
    assert harness.closed.calls == []
    assert any("budget of tenant acme is exhausted" in e.reason for e in reply.plan.excluded)


async def test_an_exhausted_budget_is_named_daily_or_monthly_in_the_plan_and_the_error(harness: Harness) -> None:
    harness.budgets.apply(exhausted("local_only", period="day"))
    plan = await harness.router.Plan(ask())
    assert any(e.reason.startswith("daily budget of tenant acme is exhausted") for e in plan.excluded)
    harness.budgets.apply(exhausted("reject", workload="faq"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask())
    assert (err.value.details() or "").startswith("monthly budget of tenant acme workload faq is exhausted")


async def test_exhausted_reject_budget_is_resource_exhausted(harness: Harness) -> None:
    harness.budgets.apply(exhausted("reject", workload="faq"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask())
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "10.5 of 10 USD" in (err.value.details() or "")
    assert harness.local.calls == []


def _events_of(harness: Harness, subject: str, request_id: str) -> list[Any]:
    return [e for s, e, _ in harness.publisher.events if s == subject and e.request_id == request_id]


async def _request_id_of_first_routed(harness: Harness, skip: int = 0) -> str:
    """The request id of the first request routed after the first `skip`."""
    for _ in range(100):
        routed = [e for s, e, _ in harness.publisher.events if s == "tierlift.attempt.started"]
        if len(routed) > skip:
            return str(routed[skip].plan.request_id)
        await asyncio.sleep(0.01)
    raise AssertionError("the request was never routed")


async def test_a_caller_who_cancels_mid_call_still_gets_the_call_billed_and_the_request_explained(
    harness: Harness,
) -> None:
    harness.local.delay_s = 0.5
    call = harness.router.Complete(ask())
    request_id = await _request_id_of_first_routed(harness)
    await asyncio.sleep(0.2)
    call.cancel()
    await asyncio.sleep(0.8)  # the provider call finishes after the caller left
    [attempt] = _events_of(harness, "tierlift.attempt.finished", request_id)
    assert attempt.attempt.error.startswith("CANCELLED: the caller gave up")
    assert Decimal(attempt.attempt.cost_usd) > 0 and attempt.attempt.usage.output_tokens == 20
    [completed] = _events_of(harness, "tierlift.request.completed", request_id)
    assert not completed.answered and "the caller gave up" in completed.error
    assert completed.total_cost_usd == attempt.attempt.cost_usd


async def _left_by_its_caller(call: Any, ladder: Any) -> None:
    """Cancel `call` and wait until the router has taken the cancellation (its call in flight goes
    on in the background)."""
    call.cancel()
    for _ in range(200):
        if ladder._background:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the router never saw the caller leave")


async def test_a_shutdown_lets_a_call_whose_caller_left_finish_and_be_billed_before_the_bus_closes(
    harness: Harness,
) -> None:
    """The router's shutdown waits (`Ladder.finish_background`) for the work that outlived its
    caller; past its limit that work is cut, and its call is billed from the write-ahead record."""
    harness.local.delay_s = 0.5
    call = harness.router.Complete(ask())
    request_id = await _request_id_of_first_routed(harness)
    ladder = harness.router.servicer.ladder  # type: ignore[attr-defined]
    await _left_by_its_caller(call, ladder)
    assert await ladder.finish_background(within_s=5) == 0  # returns once the call is billed, not at 5 s
    [attempt] = _events_of(harness, "tierlift.attempt.finished", request_id)
    assert Decimal(attempt.attempt.cost_usd) > 0
    [completed] = _events_of(harness, "tierlift.request.completed", request_id)
    assert "the caller gave up" in completed.error

    harness.local.delay_s = 30
    call = harness.router.Complete(ask("Another question?"))
    request_id = await _request_id_of_first_routed(harness, skip=1)
    await _left_by_its_caller(call, ladder)
    assert await ladder.finish_background(within_s=0.2) == 1  # cut: no event of its end
    assert _events_of(harness, "tierlift.request.completed", request_id) == []


async def test_a_caller_whose_deadline_passes_leaves_a_request_that_says_so_and_its_call_billed(
    harness: Harness,
) -> None:
    """The deadline ends the caller's wait, not the provider call: it finishes and is billed as
    the provider answered (cut with the caller, it would be closed at no cost though the provider
    had it)."""
    harness.local.delay_s = harness.closed.delay_s = 0.5
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask(), timeout=0.3)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    request_id = await _request_id_of_first_routed(harness)
    for _ in range(200):  # the call ends 0.5 s after it started, in the background
        if _events_of(harness, "tierlift.request.completed", request_id):
            break
        await asyncio.sleep(0.01)
    [attempt] = _events_of(harness, "tierlift.attempt.finished", request_id)
    assert attempt.attempt.error.startswith("CANCELLED: the caller gave up")
    assert Decimal(attempt.attempt.cost_usd) > 0 and attempt.attempt.usage.output_tokens == 20
    [completed] = _events_of(harness, "tierlift.request.completed", request_id)
    assert not completed.answered and "the caller gave up" in completed.error and completed.attempt_count == 1
    assert completed.total_cost_usd == attempt.attempt.cost_usd


async def test_a_tenant_over_its_fair_share_is_refused_at_once_and_others_are_not(harness: Harness) -> None:
    harness.local.delay_s = 0.4
    harness.policy.current = Policy(
        confidence_threshold=0.5,
        tenant_limits={"greedy": TenantLimits(concurrent=2, prompt_tokens_per_minute=100_000)},
    )
    greedy = [harness.router.Complete(ask(tenant="greedy")) for _ in range(3)]
    others = [harness.router.Complete(ask(tenant="modest")) for _ in range(3)]
    results = await asyncio.gather(*greedy, *others, return_exceptions=True)
    refused = [r for r in results[:3] if isinstance(r, grpc.aio.AioRpcError)]
    assert len(refused) == 1 and refused[0].code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "in flight" in (refused[0].details() or "")
    assert ("retry-after", "1.00") in tuple(refused[0].trailing_metadata() or ())
    assert all(not isinstance(r, Exception) for r in results[3:])  # no limit for this tenant
    assert harness.local.calls.count("gemma-3-270m-cpu") == 5  # the refused one cost nothing


async def test_prompt_tokens_per_minute_are_a_tenants_budget(harness: Harness) -> None:
    harness.policy.current = Policy(confidence_threshold=0.5, default_limits=TenantLimits(prompt_tokens_per_minute=600))
    big = "word " * 1_500  # more than the minute's 600 tokens: the first empties the bucket, the second waits
    await harness.router.Complete(ask(big))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await harness.router.Complete(ask(big))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "prompt tokens/minute" in (
        err.value.details() or ""
    )


async def test_a_stream_the_caller_leaves_is_recorded_as_cut_off(harness: Harness) -> None:
    harness.local.delay_s = 0.5
    call = harness.router.CompleteStream(ask())
    request_id = await _request_id_of_first_routed(harness)
    await asyncio.sleep(0.2)  # the adapter's stream is open, nothing has come yet
    call.cancel()
    await asyncio.sleep(0.5)
    [attempt] = _events_of(harness, "tierlift.attempt.finished", request_id)
    assert attempt.attempt.error.startswith("CANCELLED: the caller left mid-stream")
    [completed] = _events_of(harness, "tierlift.request.completed", request_id)
    assert not completed.answered and "the caller gave up" in completed.error


async def test_a_stream_closed_after_its_final_chunk_is_answered_never_abandoned(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """gRPC stops reading a stream at its final chunk and closes the generator; the answer is
    settled by then, and nothing may record the request as given up ("request_abandoned")."""

    class Call:
        def time_remaining(self) -> float:
            return 30.0

    stream = harness.router.servicer.CompleteStream(ask(), Call())  # type: ignore[attr-defined]
    async for chunk in stream:
        if chunk.HasField("final"):
            break
    await stream.aclose()
    gc.collect()
    await asyncio.sleep(0.2)  # any finaliser or background task has run
    assert [c.answered for c in harness.publisher.completions()] == [True]
    assert "request_abandoned" not in caplog.text


class StalledKeys(MemoryKeys):
    """A key-value bucket whose bus stalls: every call times out, as nats-py's do."""

    def __init__(self, stall: set[str]) -> None:
        super().__init__()
        self.stall = stall

    async def create(self, key: str, value: bytes) -> bool:
        if "create" in self.stall:
            raise nats.errors.TimeoutError
        return await super().create(key, value)

    async def put(self, key: str, value: bytes) -> None:
        if "put" in self.stall and b'"response"' in value:  # the answer kept for retries (create puts too)
            raise nats.errors.TimeoutError
        await super().put(key, value)


async def test_a_stalled_bus_is_unavailable_with_retry_after_and_never_an_internal_error() -> None:
    """An Idempotency-Key during a NATS stall was a 500 ("Unexpected nats TimeoutError"): before
    any call it is UNAVAILABLE with a retry-after hint; after the answer, the caller still gets it."""
    local = ScriptedBackend("llamacpp-local")
    for stall, answered in (({"create"}, False), ({"put"}, True)):
        async with serve_router([local, ScriptedBackend("openai")], publisher=RecordingPublisher(),
                                policy=PolicySource(Policy(confidence_threshold=0.5)),
                                idempotency=SingleFlight(StalledKeys(stall))) as router:  # fmt: skip
            calls = len(local.calls)
            if answered:
                reply = await router.Complete(ask(idempotency_key="k-stall"))
                assert reply.tier == common_pb2.TIER_LOCAL and len(local.calls) == calls + 1
                continue
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await router.Complete(ask(idempotency_key="k-stall"))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "nothing ran, retry" in (err.value.details() or "")
            assert ("retry-after", "1.00") in tuple(err.value.trailing_metadata() or ())
            assert len(local.calls) == calls  # refused before any provider call
