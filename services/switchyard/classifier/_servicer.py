"""Classifier v1: rules. Data class from the detectors; task type, complexity and language
from cheap text features. (The learned classifier replaces the task/complexity part.)"""

from __future__ import annotations

import re

import grpc

from switchyard.classifier._detectors import detect_sensitive_data
from switchyard.core.tokens import estimate_tokens
from switchyard.v1 import classifier_pb2, classifier_pb2_grpc, common_pb2

VERSION = "rules-v1"

_TASK_PATTERNS: list[tuple[common_pb2.TaskType, re.Pattern[str]]] = [
    (
        common_pb2.TASK_TYPE_CODE,
        re.compile(r"```|\bdef |\bfunction\b|\bclass \w+|\bcode\b|\bpython\b|\bSQL\b", re.I),
    ),
    (
        common_pb2.TASK_TYPE_TRANSLATION,
        re.compile(r"\btranslate\b|\bin (french|german|spanish|english)\b", re.I),
    ),
    (common_pb2.TASK_TYPE_SUMMARISATION, re.compile(r"\bsummari[sz]e\b|\btl;?dr\b|\bsummary\b", re.I)),
    (common_pb2.TASK_TYPE_EXTRACTION, re.compile(r"\bextract\b|\bpull out\b|\bas json\b", re.I)),
    (
        common_pb2.TASK_TYPE_CLASSIFICATION,
        re.compile(r"\bclassify\b|\bcategor(y|ise|ize)\b|\bsentiment\b", re.I),
    ),
    (
        common_pb2.TASK_TYPE_MATH,
        re.compile(r"\d+\s*[-+*/x^]\s*\d+|\bhow many\b|\bcalculate\b|\bsolve\b", re.I),
    ),
    (common_pb2.TASK_TYPE_REASONING, re.compile(r"\bwhy\b|\bprove\b|\bstep by step\b|\bexplain\b", re.I)),
    (common_pb2.TASK_TYPE_CREATIVE, re.compile(r"\bpoem\b|\bstory\b|\bwrite a\b|\bslogan\b", re.I)),
]


def _complexity(text: str, task: common_pb2.TaskType) -> float:
    length_part = min(1.0, len(text) / 4000)
    task_part: dict[common_pb2.TaskType, float] = {
        common_pb2.TASK_TYPE_REASONING: 0.4,
        common_pb2.TASK_TYPE_MATH: 0.3,
        common_pb2.TASK_TYPE_CODE: 0.3,
    }
    return round(min(1.0, 0.1 + length_part * 0.5 + task_part.get(task, 0.0)), 3)


def _language(text: str) -> str:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "und"
    ascii_share = sum(ch.isascii() for ch in letters) / len(letters)
    return "en" if ascii_share > 0.9 else "und"


def classify(request: classifier_pb2.ClassifyRequest) -> classifier_pb2.Classification:
    text = "\n".join(m.content for m in request.messages)
    user_text = "\n".join(m.content for m in request.messages if m.role == "user") or text
    task = next((t for t, pattern in _TASK_PATTERNS if pattern.search(user_text)), common_pb2.TASK_TYPE_CHAT)
    findings = detect_sensitive_data(text)
    detected = max(findings.values(), default=common_pb2.DATA_CLASS_PUBLIC)
    return classifier_pb2.Classification(
        task_type=task,
        complexity=_complexity(user_text, task),
        data_class=max(detected, request.declared_data_class),
        detected_data_class=detected,
        data_findings=sorted(findings),
        language=_language(user_text),
        token_estimate=estimate_tokens(text),
        classifier_version=VERSION,
    )


class ClassifierServicer(classifier_pb2_grpc.ClassifierServicer):
    async def Classify(
        self, request: classifier_pb2.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> classifier_pb2.Classification:
        if not request.messages:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "messages: must not be empty")
        return classify(request)
