"""Runs labelled questions through the local tier and measures how well its confidence
predicts correctness: accuracy, AUROC, and accuracy against the share of answers escalated.

Each answer is graded against the question's ground truth. A question with a short exact answer
is asked as is and graded on the answer's first line (lower-cased, punctuation trimmed; for a
number, the last number on that line, so "17 + 25 = 42" answers 42). Other
questions are multiple choice: the options are listed in an order shuffled by a hash of the
question (BIG-bench files often list the right option first, which a small model copying the
first option would be scored for), and the first option the answer names must be a right one.
The confidence features of each answer are kept in the output, so `tierlift calibrate` can
fit the router's confidence model from them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sklearn.metrics import roc_auc_score

from tierlift.evaluation.data import Task, fingerprint
from tierlift.router._confidence import ConfidenceModel, Features
from tierlift.v1 import adapter_pb2, common_pb2


def normalise(text: str) -> str:
    return re.sub(r"[^\w\s]", "", text.lower()).strip()


def _exact(task: Task) -> bool:
    return bool(task.targets) and all(len(t.split()) <= 3 for t in task.targets)


def prompt_of(task: Task) -> str:
    if _exact(task) or not task.options or all(option in task.input for option in task.options):
        return task.input
    order = sorted(task.options, key=lambda o: fingerprint(task.input + o))
    return f"{task.input}\nOptions: {', '.join(order)}"


def grade(task: Task, answer: str) -> bool:
    first_line = answer.split("\n")[0]
    said = normalise(first_line)
    if _exact(task):
        numbers = re.findall(r"-?\d+(?:\.\d+)?", first_line)
        return any(
            said == normalise(t) or said.startswith(normalise(t) + " ") or (numbers != [] and numbers[-1] == t.strip())
            for t in task.targets
        )
    positions = [(said.find(normalise(o)), o) for o in task.options if normalise(o) and normalise(o) in said]
    if not positions:
        return False
    _, chosen = min(positions)
    return task.options[chosen] >= max(task.options.values())


@dataclass(frozen=True)
class Graded:
    source: str
    correct: bool
    answer: str
    features: Features


async def run_tasks(
    backend: Any, model: str, tasks: Sequence[Task], priors: Sequence[float], max_tokens: int
) -> list[Graded]:
    graded = []
    for task, prior in zip(tasks, priors, strict=True):
        response = await backend.generate(
            adapter_pb2.GenerateRequest(
                model=model,
                messages=[common_pb2.Message(role="user", content=prompt_of(task))],
                params=common_pb2.GenerationParams(max_tokens=max_tokens, temperature=0.0),
            )
        )
        graded.append(
            Graded(
                task.source,
                grade(task, response.text),
                response.text,
                Features.from_signals(response.confidence, prior),
            )
        )
    return graded


def escalation_curve(confidences: Sequence[float], correct: Sequence[bool]) -> list[dict[str, float]]:
    """Escalate the least confident answers first; for each share escalated, the accuracy of the
    answers kept on the local tier, and the accuracy overall if every escalated answer is right."""
    order = sorted(range(len(correct)), key=lambda i: confidences[i])
    n = len(correct)
    points = []
    step = max(1, n // 50)
    for k in [*range(0, n, step), n]:
        kept = [correct[i] for i in order[k:]]
        points.append(
            {
                "escalated_share": round(k / n, 4),
                "threshold": round(confidences[order[k]], 4) if k < n else 1.0,
                "kept_accuracy": round(sum(kept) / len(kept), 4) if kept else 1.0,
                "accuracy_if_escalations_right": round((sum(kept) + k) / n, 4),
            }
        )
    return points


def summarise(graded: Sequence[Graded], model: ConfidenceModel | None) -> dict[str, Any]:
    correct = [g.correct for g in graded]
    raw = [g.features.raw_score() for g in graded]
    result: dict[str, Any] = {
        "questions": len(graded),
        "accuracy": round(sum(correct) / max(1, len(graded)), 4),
        "auroc_raw_confidence": _auroc(correct, raw),
    }
    scores = raw
    if model is not None:
        scores = [model.probability(g.features) for g in graded]
        result["auroc_calibrated_confidence"] = _auroc(correct, scores)
        result["calibrated_with"] = model.describe()
    by_source: dict[str, list[bool]] = {}
    for g in graded:
        by_source.setdefault(g.source, []).append(g.correct)
    result["accuracy_by_task"] = {s: round(sum(v) / len(v), 4) for s, v in sorted(by_source.items())}
    result["curve"] = escalation_curve(scores, correct)
    result["answers"] = [
        {"source": g.source, "correct": g.correct, "answer": g.answer[:80], **asdict(g.features)} for g in graded
    ]
    return result


def _auroc(correct: Sequence[bool], scores: Sequence[float]) -> float | None:
    if len(set(correct)) < 2:
        return None  # undefined when every answer is right, or every one wrong
    return round(float(roc_auc_score(correct, scores)), 4)


def run(backend: Any, model: str, tasks: Sequence[Task], priors: Sequence[float], max_tokens: int) -> list[Graded]:
    return asyncio.run(run_tasks(backend, model, tasks, priors, max_tokens))
