"""Classifier v2: MiniLM embeddings with trained heads for task type and the routing prior;
data class from checksummed detectors, spaCy entities and the data head (the strictest wins,
and the caller's declared class if stricter still)."""

from __future__ import annotations

import asyncio
import functools
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

import grpc
import py3langid

from switchyard.classifier._detectors import detect_sensitive_data
from switchyard.classifier._embedder import Embedder
from switchyard.classifier._model import LinearHead, features, load_heads
from switchyard.classifier._ner import EntityFinder
from switchyard.core.tokens import estimate_tokens
from switchyard.v1 import classifier_pb2, classifier_pb2_grpc, common_pb2

VERSION = "minilm-heads-v2"
# The data head only ever raises the class, and only when it is this sure: the detectors are
# precise, the head catches sensitive text that has no fixed format.
DATA_HEAD_MIN_PROBABILITY = 0.8


def _language(text: str) -> str:
    """ISO 639-1 code by py3langid's bundled model; "und" when there is too little text to say."""
    if sum(ch.isalpha() for ch in text) < 3:
        return "und"
    code, score = py3langid.classify(text)
    return str(code) if math.isfinite(score) else "und"


@dataclass
class Classifier:
    embedder: Embedder
    heads: dict[str, LinearHead]
    entities: EntityFinder
    cache_size: int = 4096
    _cache: OrderedDict[bytes, bytes] = field(default_factory=OrderedDict)
    _lock: Lock = field(default_factory=Lock)

    def classify(self, request: classifier_pb2.ClassifyRequest) -> classifier_pb2.Classification:
        """Labels for `request`; a repeated request (same messages, same declaration) is answered
        from a bounded cache, since apps send the same prompts again and again."""
        key = request.SerializeToString(deterministic=True)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return classifier_pb2.Classification.FromString(hit)
        result = self._classify(request)
        with self._lock:
            self._cache[key] = result.SerializeToString()
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def _classify(self, request: classifier_pb2.ClassifyRequest) -> classifier_pb2.Classification:
        text = "\n".join(m.content for m in request.messages)
        user_text = "\n".join(m.content for m in request.messages if m.role == "user") or text
        x = features(user_text, self.embedder.embed(user_text))
        task, _ = self.heads["task"].predict(x)
        small_model_ok = float(self.heads["routing"].probabilities(x)[0][1])

        findings = detect_sensitive_data(text)
        findings.update(self.entities.findings(text, dict(findings)))
        data_label, p = self.heads["data"].predict(x)
        if p >= DATA_HEAD_MIN_PROBABILITY and data_label != "PUBLIC":
            learned = common_pb2.DataClass.Value(f"DATA_CLASS_{data_label}")
            findings.setdefault(f"learned_{data_label.lower()}", learned)  # type: ignore[arg-type]
        detected = max(findings.values(), default=common_pb2.DATA_CLASS_PUBLIC)
        return classifier_pb2.Classification(
            task_type=f"TASK_TYPE_{task}",
            complexity=round(1.0 - small_model_ok, 4),
            small_model_ok=round(small_model_ok, 4),
            data_class=max(detected, request.declared_data_class),
            detected_data_class=detected,
            data_findings=sorted(findings),
            language=_language(user_text),
            token_estimate=estimate_tokens(text),
            classifier_version=VERSION,
        )


@functools.cache
def load_classifier() -> Classifier:
    """Loads the models once per process (about 8 s: torch, MiniLM, spaCy, py3langid)."""
    _language("warm up the language model")  # it loads lazily: not on the first request's time
    return Classifier(embedder=Embedder(), heads=load_heads(), entities=EntityFinder())


class ClassifierServicer(classifier_pb2_grpc.ClassifierServicer):
    def __init__(self, classifier: Classifier | None = None) -> None:
        self._classifier = classifier or load_classifier()

    async def Classify(
        self, request: classifier_pb2.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> classifier_pb2.Classification:
        if not request.messages:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "messages: must not be empty")
        if request.declared_data_class not in common_pb2.DataClass.values():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "declared_data_class: unknown value")
        # The models hold the GIL only briefly; a thread keeps the event loop answering health checks.
        return await asyncio.to_thread(self._classifier.classify, request)
