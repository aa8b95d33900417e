"""Consumes shadow runs, judges each against its live answer, and publishes the verdict
(`tierlift.quality.scored`) and any drift alert (`tierlift.quality.alert`) for the ledger."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from tierlift.assessor._drift import DriftWatch
from tierlift.assessor._judges import Embed, Verdict, judge
from tierlift.assessor._llm_judge import LlmJudge
from tierlift.assessor._metrics import alerts, judged
from tierlift.core import bus as bus_module
from tierlift.core.bus import EventBus, Received, consumer_span
from tierlift.core.logging import get_logger
from tierlift.core.sealing import Unsealable, unseal
from tierlift.router._shadow import EXPLORATION_REASON
from tierlift.v1 import events_pb2

log = get_logger(__name__)


class Assessor:
    def __init__(self, bus: EventBus, drift: DriftWatch, llm: LlmJudge | None = None, seed: str = "") -> None:
        """`seed`: this assessor's NATS seed, which opens the texts routers sealed to it."""
        self.bus, self.drift, self.llm, self.seed = bus, drift, llm, seed
        self._embedder: Any = None

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._embedder is None:  # MiniLM is loaded the first time a workload judges by embedding
            from tierlift.classifier._embedder import MiniLM

            self._embedder = MiniLM()
        return self._embedder.embed_many(texts)

    async def __call__(self, batch: Sequence[Received]) -> None:
        for received in batch:
            with consumer_span(received, f"{bus_module.SUBJECT_SHADOW} judge"):
                await self._one(received)

    async def _one(self, received: Received) -> None:
        if problem := self.bus.producer_problem(received):
            await self.bus.dead_letter(received, problem)
            return
        shadow = events_pb2.ShadowFinished()
        try:
            shadow.ParseFromString(received.msg.data)
            if shadow.sealed_answers:
                shadow.answers.ParseFromString(unseal(shadow.sealed_answers, self.seed))
        except Unsealable as exc:
            await self.bus.dead_letter(received, f"sealed_answers: {exc}")
            return
        except Exception as exc:
            await self.bus.dead_letter(received, f"payload: cannot be parsed as ShadowFinished ({exc})")
            return
        if shadow.rollout_id and not shadow.candidate_is_live:
            _candidate_first(shadow)  # a rollout's verdict is always the candidate's, against the control
        explored = not shadow.rollout_id and shadow.attempt.reason == EXPLORATION_REASON
        if explored:  # the cheap rung's answer is the one judged, the live (stronger) one its reference
            _candidate_first(shadow)
        method = shadow.judge.method or "normalised"
        try:
            if method == "llm":
                verdict = await self.llm.judge(shadow) if self.llm else Verdict(None, "no router to judge through")
            else:
                embed: Embed | None = self._embed if method == "embedding" else None
                verdict = await asyncio.to_thread(judge, shadow.judge, shadow.answers, embed)
        except Exception as exc:  # about this event: raising fails its batch at every redelivery, and judging stops
            log.warning("shadow_not_judgeable", request_id=shadow.request_id[:64], error=repr(exc)[:512])
            await self.bus.dead_letter(received, f"cannot be judged: {exc!r}"[:512])
            return
        if verdict.score is None:
            log.info("not_judged", request_id=shadow.request_id, reason=verdict.detail)
            judged.add(1, {"method": method, "verdict": "undecided"})
            return
        judged.add(1, {"method": method, "verdict": "agrees" if verdict.score >= 0.5 else "differs"})
        scored = events_pb2.QualityScored(
            event_id=f"{shadow.event_id}.scored", request_id=shadow.request_id, tenant=shadow.tenant,
            workload=shadow.workload, model=shadow.live_model, reference_model=shadow.attempt.model,
            method=method, score=verdict.score,
            source="rollout" if shadow.rollout_id else "explore" if explored else "shadow",
            rollout_id=shadow.rollout_id,
        )  # fmt: skip
        scored.occurred_at.GetCurrentTime()
        await self.bus.publish(bus_module.SUBJECT_SCORED, scored, scored.event_id)
        if shadow.rollout_id or explored:
            # the rollout controller judges those; explored prompts are the ones the prior expected the
            # cheap rung to fail, no sample of its traffic: a path's drift is judged on its own shadows
            return
        alert = self.drift.add(shadow.workload, shadow.live_model, verdict.score)
        if alert is not None:
            alert.event_id = f"quality.alert.{uuid.uuid4()}"
            alert.occurred_at.GetCurrentTime()
            await self.bus.publish(bus_module.SUBJECT_ALERT, alert, alert.event_id)
            alerts.add(1, {"workload": alert.workload, "model": alert.model})
            log.warning("quality_alert", workload=alert.workload, model=alert.model, reason=alert.reason)


def _candidate_first(shadow: events_pb2.ShadowFinished) -> None:
    """At a rollout's stage 0 the control answered live and the candidate ran as the shadow (and in
    an exploration run, the stronger rung answered live and the cheap one ran): swap them, so the
    judge scores the candidate (as "live") against the control (as the reference)."""
    a = shadow.answers
    a.live_text, a.shadow_text = a.shadow_text, a.live_text
    a.live_sha256, a.shadow_sha256 = a.shadow_sha256, a.live_sha256
    a.live_normalised_sha256, a.shadow_normalised_sha256 = a.shadow_normalised_sha256, a.live_normalised_sha256
    control = shadow.live_model
    shadow.live_model = shadow.attempt.model
    shadow.attempt.model = control
