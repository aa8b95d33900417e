"""Classifier v3: static embeddings (distilled from MiniLM) with trained heads for task type and
data class, the routing prior from the prompt's form; data class from checksummed detectors,
spaCy entities and the data head (the strictest wins, and the caller's declared class if
stricter still)."""

from __future__ import annotations

import asyncio
import functools
import math
from dataclasses import dataclass, field
from itertools import islice
from threading import Lock
from typing import Any

import cachetools
import grpc
import numpy as np
import py3langid
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from tierlift.classifier._detectors import detect_sensitive_data
from tierlift.classifier._embedder import StaticEmbedder
from tierlift.classifier._model import LinearHead, RoutingSupport, features, load_heads, load_support
from tierlift.classifier._ner import EntityFinder, near_addresses
from tierlift.classifier._prompt_form import prompt_forms
from tierlift.core.ids import content_key
from tierlift.core.tokens import estimate_tokens
from tierlift.v1 import classifier_pb2, classifier_pb2_grpc, common_pb2

VERSION = "static-minilm-heads-v4"
# The data head only ever raises the class, only when it is this sure, and never to REGULATED:
# it was calibrated on templated prompts, and on public text full of numbers (ISBNs, hashes,
# timestamps, amounts) it said REGULATED for 47% of held-out look-alikes. REGULATED comes from
# the detectors, whose every rule can be read and tested; the head marks internal and
# confidential prose, which has no fixed format.
DATA_HEAD_MIN_PROBABILITY = 0.8
DATA_HEAD_CLASSES = ("INTERNAL", "CONFIDENTIAL")
# py3langid's answer settles within a few hundred characters and its cost grows with the text
# (~1 µs a character): on the 1,260 labelled rows and MMLU prompts longer than 320 characters,
# their first 320 gave the whole text's answer every time (their first 256: all but 2).
LANGUAGE_CHARS = 320


def message_text(message: common_pb2.Message) -> str:
    """A message's text: its content, or its text parts one per line (never glued together)."""
    return message.content or "\n".join(p.text for p in message.parts if p.text)


def _language(full_text: str) -> str:
    """ISO 639-1 code by py3langid's bundled model, from the text's first `LANGUAGE_CHARS`;
    "und" when there is too little text to say."""
    text = full_text[:LANGUAGE_CHARS]
    if next(islice((ch for ch in text if ch.isalpha()), 2, None), None) is None:  # under 3 letters
        return "und"
    code, score = py3langid.classify(text)
    return str(code) if math.isfinite(score) else "und"


@dataclass
class Draft:
    """A request's labels before the entity recogniser has read it: everything else is known."""

    request: classifier_pb2.ClassifyRequest
    cache_key: bytes
    task: str
    small_model_ok: float
    data_probabilities: NDArray[np.float64]
    findings: dict[str, common_pb2.DataClass]
    form: NDArray[np.float32]
    language: str
    token_estimate: int
    near_addresses: str  # what the recogniser must read; "" when no name could change the class


@dataclass
class Classifier:
    embedder: StaticEmbedder
    heads: dict[str, LinearHead]
    entities: EntityFinder
    support: RoutingSupport | None = None  # where the routing head abstains; None: never
    cache_size: int = 4096
    _cache: cachetools.LRUCache[bytes, bytes] = field(init=False)
    _lock: Lock = field(default_factory=Lock)

    def __post_init__(self) -> None:
        self._cache = cachetools.LRUCache(maxsize=self.cache_size)

    def classify(self, request: classifier_pb2.ClassifyRequest) -> classifier_pb2.Classification:
        return self.classify_many([request])[0]

    def classify_many(self, requests: list[classifier_pb2.ClassifyRequest]) -> list[classifier_pb2.Classification]:
        """Labels for each request. Repeated requests (same messages, same declaration) come from
        a bounded cache, since apps send the same prompts again and again; the rest share one
        pass of each model, which costs little more than a single prompt."""
        results = [self.cached(r) for r in requests]
        if missing := [i for i, r in enumerate(results) if r is None]:
            fresh = self.finish_many(self.draft_many([requests[i] for i in missing]))
            for i, result in zip(missing, fresh, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def cached(self, request: classifier_pb2.ClassifyRequest) -> classifier_pb2.Classification | None:
        """The labels of a request seen before, else None; cheap enough for the event loop."""
        key = content_key(request)
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            return None
        return classifier_pb2.Classification.FromString(hit)

    def small_model_ok_many(self, texts: list[str]) -> list[float]:
        """The routing head's P(a small model suffices) for many prompts at once (evaluation); 0
        where it abstains, as in `classify`."""
        vectors = self.embedder.embed_many(texts) if self.support is not None else None
        return [float(p) for p in self._small_model_ok(prompt_forms(texts), vectors)]

    def _small_model_ok(self, forms: NDArray[np.float32], vectors: NDArray[np.float32] | None) -> NDArray[np.float64]:
        """P(a small model suffices) per prompt, 0 ("no estimate") for a prompt unlike those the
        head was trained on."""
        p = self.heads["routing"].probabilities(forms)[:, 1]
        if self.support is not None and vectors is not None:
            p = np.where(self.support.abstains(vectors), 0.0, p)
        return p

    def _features(self, texts: list[str], vectors: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.stack([features(t, v) for t, v in zip(texts, vectors, strict=True)])

    def draft_many(self, requests: list[classifier_pb2.ClassifyRequest]) -> list[Draft]:
        """Every label but the entity recogniser's, in one pass of the embedding and the heads."""
        texts = ["\n".join(message_text(m) for m in r.messages) for r in requests]
        user_texts = [
            "\n".join(message_text(m) for m in r.messages if m.role == "user") or text
            for r, text in zip(requests, texts, strict=True)
        ]
        # the data class reads every part a provider would receive, each on a line of its own
        sent = [
            "\n".join([text, *(p.text for p in r.parts)]) if r.parts else text
            for r, text in zip(requests, texts, strict=True)
        ]
        vectors = self.embedder.embed_many(user_texts)
        x = self._features(user_texts, vectors)
        tasks = self.heads["task"].probabilities(x)
        forms = prompt_forms(user_texts)
        small_model_ok = self._small_model_ok(forms, vectors)
        data = self.heads["data"].probabilities(x)
        drafts = []
        for request, text, user_text, task, ok, data_p, form in zip(
            requests, sent, user_texts, tasks, small_model_ok, data, forms, strict=True
        ):
            findings = detect_sensitive_data(text)
            drafts.append(
                Draft(
                    request=request,
                    cache_key=content_key(request),
                    task=self.heads["task"].labels[int(task.argmax())],
                    small_model_ok=float(ok),
                    data_probabilities=data_p,
                    findings=findings,
                    form=form,
                    language=_language(user_text),
                    token_estimate=estimate_tokens(text),
                    near_addresses=near_addresses(text, findings),
                )
            )
        return drafts

    def first_pass(self, requests: list[classifier_pb2.ClassifyRequest]) -> list[classifier_pb2.Classification | Draft]:
        """The labels of the requests that the entity recogniser need not read, drafts of the rest."""
        drafts = self.draft_many(requests)
        answered = iter(self.finish_many([d for d in drafts if not d.near_addresses]))
        return [d if d.near_addresses else next(answered) for d in drafts]

    def finish_many(self, drafts: list[Draft]) -> list[classifier_pb2.Classification]:
        """The labels of drafts, the recogniser reading (in one pass) those that need it; each is
        remembered for when the same request comes again."""
        if asked := [d for d in drafts if d.near_addresses]:  # spaCy's pipe costs ~20 µs even empty
            for draft, found in zip(asked, self.entities.findings_many([d.near_addresses for d in asked]), strict=True):
                draft.findings.update(found)
        results = [self._labels(d) for d in drafts]
        with self._lock:
            for draft, result in zip(drafts, results, strict=True):
                self._cache[draft.cache_key] = result.SerializeToString()
        return results

    def _labels(self, draft: Draft) -> classifier_pb2.Classification:
        findings = dict(draft.findings)
        best = int(draft.data_probabilities.argmax())
        data_label = self.heads["data"].labels[best]
        if draft.data_probabilities[best] >= DATA_HEAD_MIN_PROBABILITY and data_label in DATA_HEAD_CLASSES:
            learned = common_pb2.DataClass.Value(f"DATA_CLASS_{data_label}")
            findings.setdefault(f"learned_{data_label.lower()}", learned)  # type: ignore[arg-type]
        detected = max(findings.values(), default=common_pb2.DATA_CLASS_PUBLIC)
        where = _finding_fields(draft.request) if draft.findings else []
        return classifier_pb2.Classification(
            data_finding_fields=where,
            task_type=f"TASK_TYPE_{draft.task}",
            # no estimate (the head abstained): 0 for both, as a classifier without a routing head
            complexity=round(1.0 - draft.small_model_ok, 4) if draft.small_model_ok else 0.0,
            small_model_ok=round(draft.small_model_ok, 4),
            data_class=max(detected, draft.request.declared_data_class),
            detected_data_class=detected,
            data_findings=sorted(findings),
            language=draft.language,
            token_estimate=draft.token_estimate,
            classifier_version=VERSION,
            prompt_form=[round(float(v), 4) for v in draft.form],
        )


def _finding_fields(request: classifier_pb2.ClassifyRequest) -> list[str]:
    """The detectors' findings by field and offset: each message and part read alone. Only for a
    request with findings, so the common request pays nothing for it."""
    located = [(f"messages[{i}].content", message_text(m)) for i, m in enumerate(request.messages)]
    located += [(p.field, p.text) for p in request.parts]
    return [
        f"{kind} at {field} offset {_offset(text, kind)}"
        for field, text in located
        for kind in sorted(detect_sensitive_data(text))
    ]


# A finding is placed by reading windows of the field: the first window in which the detectors
# find it, then its start moved right for as long as they still do, so the offset is where the
# evidence begins (the word or the name before a number, the number itself). About twice the
# field's detection time, and only for fields with findings.
_WINDOW, _STEP = 256, 96


def _offset(text: str, kind: str) -> int:
    for start in range(0, max(1, len(text) - _WINDOW + _STEP), _STEP):
        if kind in detect_sensitive_data(text[start : start + _WINDOW]):
            break
    else:
        return 0  # found only with the whole field as its context
    end = start + _WINDOW
    low, high = start, min(end, len(text))
    while high - low > 1:
        middle = (low + high) // 2
        if kind in detect_sensitive_data(text[middle:end]):
            low = middle
        else:
            high = middle
    return low


@functools.cache
def load_classifier() -> Classifier:
    """Loads the models once per process (about 2 s: the static embeddings, spaCy, py3langid)."""
    # One BLAS thread: every matrix here is small, and a second thread spent more CPU handing
    # work over than it saved (the recogniser: 19-27 ms a 700-character part, against 38-47)
    threadpool_limits(1, "blas")
    # both load lazily: not on the first request's time
    _language("warm up the language model")
    detect_sensitive_data("Grüße")  # the Unicode table, built on the first text that is not ASCII
    return Classifier(embedder=StaticEmbedder(), heads=load_heads(), entities=EntityFinder(), support=load_support())


class _Batcher:
    """Gathers concurrent Classify calls into one pass of the models. No waiting: each pass takes
    what queued while the previous one ran, so a quiet service answers at single-prompt latency
    and a busy one batches more, instead of queueing prompts one by one behind each other. Calls
    whose caller gave up (deadline, cancel) are dropped before the pass.

    A pass answers the prompts the entity recogniser need not read first, then has it read the
    few that it must (it costs tens of milliseconds a prompt with an address). Both steps run in
    one worker thread, one after the other: run side by side, the two threads' contention for
    the GIL slowed both more than the wait saved."""

    def __init__(self, classifier: Classifier, max_batch: int = 32) -> None:
        self._classifier = classifier
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[classifier_pb2.ClassifyRequest, asyncio.Future[Any]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def classify(self, request: classifier_pb2.ClassifyRequest) -> classifier_pb2.Classification:
        # a repeated prompt is answered at once, without a trip through the worker's thread
        if (hit := self._classifier.cached(request)) is not None:
            return hit
        future: asyncio.Future[classifier_pb2.Classification] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((request, future))
        # The worker runs while there is work and ends when the queue is empty; it only looks at
        # the queue between awaits, so an item put here is always seen by a worker.
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while not self._queue.empty():
            batch = [self._queue.get_nowait()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [(r, f) for r, f in batch if not f.done()]
            if not batch:
                continue
            try:
                # The models release the GIL for much of their work: a thread keeps the event loop
                # answering health checks and queueing the next batch meanwhile.
                first = await asyncio.to_thread(self._classifier.first_pass, [r for r, _ in batch])
                asked = []
                for result, (_, future) in zip(first, batch, strict=True):
                    if isinstance(result, Draft):
                        asked.append((result, future))
                    elif not future.done():
                        future.set_result(result)
                if asked:
                    results = await asyncio.to_thread(self._classifier.finish_many, [d for d, _ in asked])
                    for (_, future), result in zip(asked, results, strict=True):
                        if not future.done():
                            future.set_result(result)
            except Exception as exc:  # a failed pass fails its calls, never the worker
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)


class ClassifierServicer(classifier_pb2_grpc.ClassifierServicer):
    def __init__(self, classifier: Classifier | None = None) -> None:
        self._batcher = _Batcher(classifier or load_classifier())

    async def Classify(
        self, request: classifier_pb2.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> classifier_pb2.Classification:
        if not request.messages:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "messages: must not be empty")
        if request.declared_data_class not in common_pb2.DataClass.values():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "declared_data_class: unknown value")
        return await self._batcher.classify(request)
