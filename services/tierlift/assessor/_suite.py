"""Standing evaluation: a golden set per workload (`<suites dir>/<workload>.jsonl`, one item per
line: `messages` or `prompt`, a `reference`, and a `check`), run against model paths through the
router (each path pinned with `constraints.models`; calls priced as the assessor's kind
"judge"). Each item's pass or fail is a `tierlift.quality.scored` event (source "suite"); a
path's first score is its baseline (kept in a JetStream key-value bucket, so it survives
restarts), and a later run more than `max_drop` (relative) below it publishes a quality alert.

Checks: "exact", "normalised" (core/text_match), "contains" (the normalised reference appears
in the normalised answer), "regex" (the reference is a pattern the answer must match),
"json_schema" (the reference is a schema the answer must validate against)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc

from tierlift.assessor._judges import json_valid
from tierlift.assessor._metrics import alerts
from tierlift.core import bus as bus_module
from tierlift.core.ids import is_slug
from tierlift.core.json_schemas import schema_validator
from tierlift.core.signed_bucket import SignedBucket
from tierlift.core.text_match import normalise
from tierlift.v1 import assessor_pb2, common_pb2, events_pb2, router_pb2, router_pb2_grpc

CHECKS = ("exact", "normalised", "contains", "regex", "json_schema")
# the path a run names no models for: each item routed as the workload's live traffic is (no
# model pinned); its baseline is the live route's, each score is the answering model's
LIVE = "live"
MAX_FAILURES_SHOWN = 5


class SuiteError(ValueError):
    """A golden set that cannot be run; the message names the file and line, or the field."""


class SuiteMissing(SuiteError):
    """No golden set for the workload."""


@dataclass(frozen=True)
class Item:
    messages: list[common_pb2.Message]
    reference: str
    check: str


def _unusable_reference(check: str, reference: str) -> str:
    if check == "regex":
        try:
            re.compile(reference)
        except re.error as exc:
            return f"not a regular expression ({exc})"
    if check == "json_schema" and isinstance(problem := schema_validator(reference), str):
        return problem
    return ""


def load_suite(path: Path) -> list[Item]:
    if not path.exists():
        raise SuiteMissing(f"{path.name}: no golden set for this workload in the suites folder")
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            messages = raw.get("messages") or [{"role": "user", "content": raw["prompt"]}]
            check = raw.get("check", "normalised")
            reference = raw["reference"]
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError) as exc:
            problem = f"not an item with prompt or messages and a reference ({exc})"
            raise SuiteError(f"{path.name}:{number}: {problem}") from None
        if check not in CHECKS:
            raise SuiteError(f"{path.name}:{number}: check {check!r} is not one of {', '.join(CHECKS)}")
        if not isinstance(reference, str):
            reference = json.dumps(reference)
        if problem := _unusable_reference(check, reference):  # found when run, it failed the whole run
            raise SuiteError(f"{path.name}:{number}: reference: {problem}")
        turns = [common_pb2.Message(role=m["role"], content=m["content"]) for m in messages]
        items.append(Item(turns, reference, check))
    if not items:
        raise SuiteError(f"{path.name}: no items")
    return items


def passes(item: Item, answer: str) -> tuple[bool, str]:
    """Whether `answer` passes the item's check, and why not."""
    if item.check == "exact":
        ok = answer.strip() == item.reference.strip()
    elif item.check == "normalised":
        ok = normalise(answer) == normalise(item.reference)
    elif item.check == "contains":
        ok = normalise(item.reference) in normalise(answer)
    elif item.check == "regex":
        ok = re.search(item.reference, answer) is not None
    else:  # the shadow judge's check: an answer or schema it cannot read fails, never raises
        ok = json_valid(answer, item.reference).score == 1.0
    return ok, "" if ok else f"{item.check}: expected {item.reference[:60]!r}, got {answer[:60]!r}"


class Baselines(Protocol):
    async def get(self, workload: str, model: str) -> float | None: ...

    async def set(self, workload: str, model: str, score: float) -> None: ...


@dataclass
class MemoryBaselines:
    scores: dict[tuple[str, str], float]

    async def get(self, workload: str, model: str) -> float | None:
        return self.scores.get((workload, model))

    async def set(self, workload: str, model: str, score: float) -> None:
        self.scores[workload, model] = score


class JetStreamBaselines:
    """One key per workload and model path in bucket TIERLIFT_SUITE_BASELINES."""

    BUCKET = "TIERLIFT_SUITE_BASELINES"

    def __init__(self, kv: Any) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: Any, signer: Any = None) -> JetStreamBaselines:
        """`signer`: the assessor's EventSigner, whose signature each value carries."""
        return cls(await SignedBucket.open(js, cls.BUCKET, signer))

    @staticmethod
    def _key(workload: str, model: str) -> str:
        return f"{workload}.{re.sub(r'[^A-Za-z0-9_-]', '_', model)}"

    async def get(self, workload: str, model: str) -> float | None:
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await self.kv.get(self._key(workload, model))
        except KeyNotFoundError:
            return None
        return float(entry.value.decode())

    async def set(self, workload: str, model: str, score: float) -> None:
        await self.kv.put(self._key(workload, model), str(score).encode())


Publish = Callable[[str, Any, str], Awaitable[None]]


@dataclass
class SuiteRunner:
    router: router_pb2_grpc.RouterStub
    publish: Publish
    baselines: Baselines
    suites_dir: Path
    tenant: str = "tierlift-quality"
    max_drop: float = 0.05
    timeout_s: float = 60.0

    async def run(self, workload: str, models: list[str]) -> assessor_pb2.SuiteReport:
        if not is_slug(workload):
            raise SuiteError(f"workload: {workload[:64]!r} is not a lowercase slug")
        items = load_suite(self.suites_dir / f"{workload}.jsonl")
        report = assessor_pb2.SuiteReport(workload=workload)
        for model in models or [LIVE]:
            report.paths.append(await self._path(workload, model, items))
        return report

    async def _path(self, workload: str, model: str, items: list[Item]) -> assessor_pb2.SuitePathResult:
        run_id = uuid.uuid4().hex[:12]
        result = assessor_pb2.SuitePathResult(model=model, items=len(items))
        for index, item in enumerate(items):
            request = router_pb2.CompleteRequest(
                tenant=self.tenant, workload=workload, messages=item.messages,
                params=common_pb2.GenerationParams(temperature=0.0),
                constraints=router_pb2.Constraints(models=[] if model == LIVE else [model]),
            )  # fmt: skip
            answered_by = model
            try:
                reply = await self.router.Complete(request, timeout=self.timeout_s)
                ok, why = passes(item, reply.text)
                answered_by = reply.model or model
            except grpc.aio.AioRpcError as exc:
                ok, why = False, f"{exc.code().name}: {(exc.details() or '')[:120]}"
            result.passed += ok
            if not ok and len(result.failures) < MAX_FAILURES_SHOWN:
                by = f" ({answered_by})" if model == LIVE else ""
                result.failures.append(f"item {index + 1}{by}: {why}")
            scored = events_pb2.QualityScored(
                event_id=f"suite.{run_id}.{model}.{index}", request_id=f"suite.{run_id}.{index}",
                tenant=self.tenant, workload=workload, model=answered_by, reference_model="golden-set",
                method=item.check, score=1.0 if ok else 0.0, source="suite",
            )  # fmt: skip
            scored.occurred_at.GetCurrentTime()
            await self.publish(bus_module.SUBJECT_SCORED, scored, scored.event_id)
        result.score = result.passed / result.items
        baseline = await self.baselines.get(workload, model)
        result.baseline = -1.0 if baseline is None else baseline
        if baseline is None:
            await self.baselines.set(workload, model, result.score)
        elif result.score < baseline * (1 - self.max_drop):
            result.regressed = True
            alert = events_pb2.QualityAlert(
                event_id=f"quality.alert.{uuid.uuid4()}", workload=workload, model=model,
                reason=f"golden set: {result.score:.1%} passed, down from the baseline {baseline:.1%} "
                f"(more than {self.max_drop:.0%})",
                observed=result.score, baseline=baseline, window=result.items,
            )  # fmt: skip
            alert.occurred_at.GetCurrentTime()
            await self.publish(bus_module.SUBJECT_ALERT, alert, alert.event_id)
            alerts.add(1, {"workload": workload, "model": model})
        return result
