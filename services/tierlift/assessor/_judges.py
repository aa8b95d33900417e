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
import referencing.exceptions

from tierlift.core.json_schemas import schema_validator
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
        return json_valid(answers.live_text, spec.json_schema)
    if method == "embedding":
        if embed is None:
            return Verdict(None, "no embedder loaded")
        vectors = embed([answers.live_text, answers.shadow_text])
        cosine = float(np.dot(vectors[0], vectors[1]))
        return _agrees(cosine >= spec.agree_at, f"cosine {cosine:.3f} vs {spec.agree_at:.2f}")
    return Verdict(None, f"unknown judge method {method!r}")


def _agrees(same: bool, what: str) -> Verdict:
    return Verdict(1.0 if same else 0.0, what if same else f"not {what}")


def json_valid(text: str, schema_text: str) -> Verdict:
    """Whether the answer is JSON valid against the schema. A model writes the answer, so JSON
    too deep for the reader or a number too long for it is undecided, never an exception: one
    raised here failed the assessor's batch at every redelivery, and judging stopped."""
    schema = schema_validator(schema_text)
    if isinstance(schema, str):
        return Verdict(None, schema)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Verdict(0.0, f"not JSON: {exc.msg}")
    except (ValueError, RecursionError) as exc:  # valid JSON that Python cannot hold
        return Verdict(None, f"JSON that cannot be read: {str(exc)[:200]}")
    try:
        error = jsonschema.exceptions.best_match(schema.iter_errors(value))
    except (referencing.exceptions.Unresolvable, RecursionError) as exc:
        return Verdict(None, f"cannot be checked against the schema: {str(exc)[:200]}")
    if error is not None:
        return Verdict(0.0, f"schema: {error.message[:200]}")
    return Verdict(1.0, "valid against the schema")
