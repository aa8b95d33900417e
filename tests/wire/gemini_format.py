"""Gemini's REST payloads, for the Gemini API (/v1beta/models/<model>:generateContent, key in
`x-goog-api-key`) and Vertex AI (/v1beta1/projects/<p>/locations/<l>/publishers/google/models/
<model>:generateContent, a Bearer token from Google's OAuth token endpoint): responses with
usage and `logprobsResult`, SSE streaming (`:streamGenerateContent?alt=sse`), google.rpc error
bodies with RetryInfo on 429."""

from __future__ import annotations

from typing import Any

from tests.wire.openai_format import (
    ANSWER_TOKENS,
    EMBEDDING_DIMENSIONS,
    TOKEN_LOGPROB,
    cache_counts,
    example,
    reasoning_tokens,
    vector,
)

PATH = (
    r"/(?:v1|v1beta|v1beta1)/(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
    r"(?:publishers/(?P<publisher>[^/]+)/)?models/(?P<model>[^:]+):(?P<method>generateContent|streamGenerateContent|batchEmbedContents|predict)"
)
MODELS_PATH = "/v1beta/models"
STREAM_END = b""
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip


def is_stream(groups: dict[str, str], body: dict[str, Any]) -> bool:
    return groups["method"] == "streamGenerateContent"


def _texts(body: dict[str, Any]) -> list[str]:
    contents = [*body.get("contents", []), body.get("systemInstruction") or {"parts": []}]
    return [str(part.get("text", "")) for content in contents for part in content.get("parts", [])]


def _usage(body: dict[str, Any], output_tokens: int) -> dict[str, Any]:
    """Gemini's usageMetadata: promptTokenCount counts the cached content (implicit caching: a
    prompt seen before), candidatesTokenCount leaves the thoughts out. Zero counts are left out,
    as Gemini leaves them out."""
    prompt = sum(len(text.split()) for text in _texts(body))
    cached, _ = cache_counts(body, prompt, writes=False)
    thoughts = reasoning_tokens(body)
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": output_tokens,
                             "totalTokenCount": prompt + output_tokens + thoughts,
                             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}  # fmt: skip
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def function_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """Gemini calling a function: the allowed one (or the first declared) with arguments from its
    schema, unless none is declared, the mode is NONE, or the last turn answers a call."""
    declared = [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    last = body["contents"][-1]["parts"] if body.get("contents") else []
    if not declared or config.get("mode") == "NONE" or any("functionResponse" in part for part in last):
        return None
    allowed = config.get("allowedFunctionNames") or []
    chosen = next((d for d in declared if d["name"] in allowed), declared[0])
    # google-genai writes this field's name in snake case; the API takes both spellings of proto fields
    schema = chosen.get("parametersJsonSchema") or chosen.get("parameters_json_schema") or {"type": "object"}
    return {
        "functionCall": {"id": f"call_wire{len(body['contents'])}", "name": chosen["name"], "args": example(schema)}
    }


def _answer(body: dict[str, Any], tokens: list[str]) -> str:
    last = body["contents"][-1]["parts"] if body.get("contents") else []
    responses = [part["functionResponse"] for part in last if "functionResponse" in part]
    return f"The tool said: {responses[0]['response']['result']}" if responses else "".join(tokens)


def _candidate(body: dict[str, Any], tokens: list[str], finished: bool) -> dict[str, Any]:
    call = function_call(body)
    parts = [call] if call is not None else [{"text": _answer(body, tokens)}]
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finished:
        candidate["finishReason"] = "STOP"
    if (body.get("generationConfig") or {}).get("responseLogprobs"):
        chosen = [{"token": t, "logProbability": TOKEN_LOGPROB} for t in tokens]
        candidate["logprobsResult"] = {"topCandidates": [], "chosenCandidates": chosen}
        candidate["avgLogprobs"] = TOKEN_LOGPROB
    return candidate


def completion(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "candidates": [_candidate(body, ANSWER_TOKENS, True)],
        "usageMetadata": _usage(body, len(ANSWER_TOKENS)),
        "modelVersion": body["model"],
    }


def stream_events(body: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """One chunk per token; the last carries the finish reason and the whole usage. A function
    call comes whole in one chunk, as Gemini sends it."""
    events: list[tuple[str | None, dict[str, Any]]] = []
    if function_call(body) is not None or _answer(body, ANSWER_TOKENS) != "".join(ANSWER_TOKENS):
        chunk = {"candidates": [_candidate(body, ANSWER_TOKENS, True)], "modelVersion": body["model"]}
        return [(None, {**chunk, "usageMetadata": _usage(body, len(ANSWER_TOKENS))})]
    for i, token in enumerate(ANSWER_TOKENS):
        last = i == len(ANSWER_TOKENS) - 1
        chunk = {"candidates": [_candidate(body, [token], last)], "modelVersion": body["model"]}
        chunk["usageMetadata"] = _usage(body, i + 1 if last else 0)
        events.append((None, chunk))
    return events


def embedding(groups: dict[str, str], body: dict[str, Any]) -> dict[str, Any] | None:
    """The Gemini API's batchEmbedContents and Vertex AI's predict (None: a generation call)."""
    if groups["method"] == "batchEmbedContents":
        texts = [r["content"]["parts"][0]["text"] for r in body["requests"]]
        size = body["requests"][0].get("outputDimensionality") or EMBEDDING_DIMENSIONS
        return {"embeddings": [{"values": vector(text, size)} for text in texts]}
    if groups["method"] == "predict":
        size = (body.get("parameters") or {}).get("outputDimensionality") or EMBEDDING_DIMENSIONS
        stats = [{"token_count": len(i["content"].split()), "truncated": False} for i in body["instances"]]
        return {"predictions": [{"embeddings": {"values": vector(i["content"], size), "statistics": s}}
                                for i, s in zip(body["instances"], stats, strict=True)]}  # fmt: skip
    return None


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "INTERNAL")}}


def retry_info(body: dict[str, Any], seconds: str) -> dict[str, Any]:
    """A 429's body as Gemini sends it: the delay the client should wait, in RetryInfo."""
    delay = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"}
    body["error"]["details"] = [delay]
    return body


def models_body(ids: list[str]) -> dict[str, Any]:
    """GET /v1beta/models."""
    return {"models": [{"name": f"models/{i}", "displayName": i} for i in ids]}


def sent(body: dict[str, Any]) -> dict[str, Any]:
    """The request in the terms the contract tests compare."""
    config = body.get("generationConfig") or {}
    system = body.get("systemInstruction") or {"parts": []}
    return {
        "model": body["model"],
        "max_tokens": config.get("maxOutputTokens"),
        "system": "".join(part.get("text", "") for part in system["parts"]),
        "logprobs": config.get("responseLogprobs"),
        "seed": config.get("seed"),
        "json": config.get("responseMimeType") == "application/json",
        "schema": config.get("responseJsonSchema"),
    }


def key_rejected(protocol: str, message: str) -> tuple[int, dict[str, Any]]:
    """The Gemini API answers a bad key with 400 and the ErrorInfo reason API_KEY_INVALID;
    Vertex AI a bad token with 401."""
    if protocol == "vertex":
        return 401, error_body(401, message)
    body = error_body(400, message)
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
            "domain": "googleapis.com"}  # fmt: skip
    body["error"]["details"] = [info]
    return 400, body
