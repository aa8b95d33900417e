"""Shadow runs through the real router servicer, adapters and classifier on loopback, with
scripted backends: after the caller's answer, off its path; under the live limits; priced as
their own kind; stopped by the daily cap; texts of REGULATED requests kept only as digests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import grpc
import pytest

from tests.unit.router_harness import CATALOG, RecordingPublisher, ScriptedBackend, serve_router
from tierlift.core.text_match import normalise, sha256
from tierlift.router._policy import Policy, ShadowPolicy
from tierlift.router._policy_source import PolicySource
from tierlift.router._shadow import MemorySpend, Shadows
from tierlift.v1 import common_pb2, events_pb2, router_pb2, router_pb2_grpc

JUDGE = events_pb2.JudgeSpec(method="normalised")


@dataclass
class Rig:
    router: router_pb2_grpc.RouterStub
    local: ScriptedBackend
    closed: ScriptedBackend
    publisher: RecordingPublisher
    shadows: Shadows
    policy: PolicySource

    def use(self, **shadow: object) -> None:
        fields = {"sample": 1.0, "models": ("gpt-5-mini",), "max_usd_per_day": Decimal("5"), "judge": JUDGE}
        self.policy.current = Policy(confidence_threshold=0.5, shadows={"faq": ShadowPolicy(**{**fields, **shadow})})  # type: ignore[arg-type]

    def events(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for _, e, _ in self.publisher.events if isinstance(e, kind)]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    local, closed = ScriptedBackend("llamacpp-local"), ScriptedBackend("openai")
    publisher, policy = RecordingPublisher(), PolicySource(Policy(confidence_threshold=0.5))
    shadows = Shadows(CATALOG, {}, publisher, MemorySpend(), draw=lambda: 0.0)
    async with serve_router([local, closed], shadows=shadows, publisher=publisher, policy=policy) as router:
        yield Rig(router, local, closed, publisher, shadows, policy)


def ask(text: str = "What is the capital of France?", data_class: int = 0) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant="acme", workload="faq", messages=[common_pb2.Message(role="user", content=text)],
        constraints=router_pb2.Constraints(data_class=data_class),  # type: ignore[arg-type]
    )  # fmt: skip


async def settle(rig: Rig) -> None:
    for _ in range(100):
        await asyncio.sleep(0.02)
        if rig.events(events_pb2.ShadowFinished) or rig.shadows.skipped:
            return


async def test_a_sampled_request_runs_on_the_shadow_after_the_caller_has_its_answer(rig: Rig) -> None:
    rig.use()
    rig.closed.delay_s = 0.3  # the shadow model is slow; the caller must not wait for it
    reply = await rig.router.Complete(ask())
    assert reply.model == "gemma-3-270m-cpu" and rig.events(events_pb2.ShadowFinished) == []
    await asyncio.sleep(0.5)
    assert rig.closed.calls == ["gpt-5-mini"]
    [billed] = [e for e in rig.events(events_pb2.AttemptFinished) if e.kind == "shadow"]
    assert billed.attempt.model == "gpt-5-mini" and billed.request_id == reply.request_id
    assert Decimal(billed.attempt.cost_usd) == CATALOG.get("gpt-5-mini").cost(100, 20)  # type: ignore[union-attr]
    [finished] = rig.events(events_pb2.ShadowFinished)
    assert (finished.live_model, finished.attempt.model, finished.judge.method) == (
        "gemma-3-270m-cpu",
        "gpt-5-mini",
        "normalised",
    )
    assert finished.answers.text_kept and finished.answers.live_text == reply.text
    assert finished.answers.shadow_text == "answer from gpt-5-mini"
    assert [m.content for m in finished.answers.messages] == ["What is the capital of France?"]
    # the live request's own events say nothing of the shadow
    assert all(e.kind == "" for e in rig.events(events_pb2.AttemptFinished) if e.attempt.model != "gpt-5-mini")


async def test_regulated_data_is_never_shadowed_off_local(rig: Rig) -> None:
    rig.use()
    await rig.router.Complete(ask("My SSN is 123-45-6789", common_pb2.DATA_CLASS_REGULATED))
    await settle(rig)
    assert rig.closed.calls == [] and rig.shadows.skipped == {"excluded": 1}
    assert rig.events(events_pb2.ShadowFinished) == []


async def test_a_regulated_shadow_on_local_carries_digests_not_text(rig: Rig) -> None:
    rig.use(models=("gemma-3-270m-cpu",))  # the live answer comes from the cheaper vLLM model
    vllm = ScriptedBackend("vllm-local")
    publisher, policy = rig.publisher, rig.policy
    shadows = Shadows(CATALOG, {}, publisher, MemorySpend(), draw=lambda: 0.0)
    async with serve_router([rig.local, vllm], shadows=shadows, publisher=publisher, policy=policy) as router:
        reply = await router.Complete(ask("My SSN is 123-45-6789", common_pb2.DATA_CLASS_REGULATED))
        for _ in range(100):
            if rig.events(events_pb2.ShadowFinished):
                break
            await asyncio.sleep(0.02)
    [finished] = rig.events(events_pb2.ShadowFinished)
    answers = finished.answers
    assert not answers.text_kept and answers.live_text == answers.shadow_text == "" and not answers.messages
    assert answers.live_normalised_sha256 == sha256(normalise(reply.text))
    assert reply.model == "llama-3.1-8b-instruct-vllm"
    assert answers.shadow_sha256 == sha256("answer from gemma-3-270m-cpu")


async def test_the_daily_cap_stops_shadows_and_unsampled_requests_never_run_one(rig: Rig) -> None:
    rig.use(max_usd_per_day=Decimal("0.000001"))  # less than one shadow run costs
    await rig.router.Complete(ask())
    await settle(rig)
    await rig.router.Complete(ask("And of Spain?"))
    await asyncio.sleep(0.2)
    assert rig.closed.calls == ["gpt-5-mini"] and rig.shadows.skipped == {"capped": 1}

    rig.shadows.draw = lambda: 0.99
    rig.use(sample=0.05)
    await rig.router.Complete(ask("And of Italy?"))
    await asyncio.sleep(0.2)
    assert rig.closed.calls == ["gpt-5-mini"]


async def test_a_shadow_run_is_written_ahead_and_a_failed_one_closes_its_record_at_no_cost(rig: Rig) -> None:
    rig.use()
    await rig.router.Complete(ask())
    await settle(rig)
    [started] = [e.attempt for e in rig.events(events_pb2.AttemptStarted) if e.attempt.kind == "shadow"]
    [billed] = [e for e in rig.events(events_pb2.AttemptFinished) if e.kind == "shadow"]
    assert started.event_id == billed.event_id  # its outcome settles the record
    assert Decimal(started.attempt.cost_usd) >= Decimal(billed.attempt.cost_usd) > 0  # the worst case covers it
    subjects = [s for s, _, _ in rig.publisher.events]
    assert subjects.index("tierlift.attempt.started", subjects.index("tierlift.request.settled")) < subjects.index(
        "tierlift.attempt.finished"
    )

    rig.publisher.events.clear()
    rig.closed.fail_with = grpc.StatusCode.UNAVAILABLE  # the adapter's own status: the provider billed nothing
    await rig.router.Complete(ask("What is the capital of Spain?"))
    for _ in range(100):
        if any(e.kind == "shadow" for e in rig.events(events_pb2.AttemptFinished)):
            break
        await asyncio.sleep(0.02)
    [started] = [e.attempt for e in rig.events(events_pb2.AttemptStarted) if e.attempt.kind == "shadow"]
    [closed] = [e for e in rig.events(events_pb2.AttemptFinished) if e.kind == "shadow"]
    assert closed.event_id == started.event_id and Decimal(closed.attempt.cost_usd) == 0
    assert closed.attempt.outcome == router_pb2.OUTCOME_FAULT and not closed.attempt.unsettled
