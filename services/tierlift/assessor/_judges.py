"""How one live answer compares with a reference answer, per the workload's judge: exact or
normalised match (from digests, so REGULATED answers whose text is not kept can still be judged),
JSON-schema validity of the live answer, or embedding similarity (the classifier's MiniLM) at a
threshold. Scores are 1.0 (agrees) or 0.0, so a path's mean score is its agreement rate."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jsonschema
import numpy as np

from tierlift.v1 import events_pb2

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Verdict:
    score: float | None  # None: this judge cannot decide (the texts were not kept)
    detail: str


def judge(spec: events_pb2.JudgeSpec, answers: events_pb2.Answers, embed: Embed | None) -> Verdict:
    method = spec.method or "normalised"
    if method == "exact":
        return _agrees(answers.live_sha256 == answers.shadow_sha256, "byte-identical")
    if method == "normalised":
        return _agrees(answers.live_normalised_sha256 == answers.shadow_normalised_sha256, "equal once normalised")
    if not answers.text_kept:
        return Verdict(None, f"{method} needs the texts, which the policy does not keep for this data class")
    if method == "json_schema":
        return _json_valid(answers.live_text, spec.json_schema)
    if method == "embedding":
        if embed is None:
            return Verdict(None, "no embedder loaded")
        vectors = embed([answers.live_text, answers.shadow_text])
        cosine = float(np.dot(vectors[0], vectors[1]))
        return _agrees(cosine >= spec.agree_at, f"cosine {cosine:.3f} vs {spec.agree_at:.2f}")
    return Verdict(None, f"unknown judge method {method!r}")


def _agrees(same: bool, what: str) -> Verdict:
    return Verdict(1.0 if same else 0.0, what if same else f"not {what}")


def _json_valid(text: str, schema_text: str) -> Verdict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Verdict(0.0, f"not JSON: {exc.msg}")
    try:
        jsonschema.validate(value, json.loads(schema_text))
    except jsonschema.ValidationError as exc:
        return Verdict(0.0, f"schema: {exc.message[:200]}")
    return Verdict(1.0, "valid against the schema")
