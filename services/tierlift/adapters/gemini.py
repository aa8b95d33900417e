"""Google's Gemini models through the official `google-genai` SDK, on the Gemini API (an API key)
or on Vertex AI (a project, a location and Application Default Credentials: a service account,
workload identity). JSON and SSE streaming, usage (thinking tokens counted as output, as they
are billed), token logprobs where the model gives them (`response_logprobs`: asked only when
the catalog says the model has them).

Retries are ours, not the SDK's: its backoff ignores the `RetryInfo.retryDelay` that a Gemini
429 carries. A 429 or 5xx, a timeout or a dropped connection is retried up to `max_retries`
times, waiting what the provider asked (RetryInfo, else Retry-After), else an exponential
backoff with jitter; a provider asking for a longer wait than `MAX_RETRY_WAIT_S` is not waited
for: the router falls back at once.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
import grpc
import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tierlift.adapters._backend import (
    BackendError,
    ProviderFault,
    clients_by_model,
    map_error,
    signals_from_logprobs,
)
from tierlift.core.catalog import Model
from tierlift.core.entry import StartupError
from tierlift.v1 import adapter_pb2, common_pb2

DEFAULT_MAX_TOKENS = 512
MAX_RETRY_WAIT_S = 10.0
RETRYABLE_HTTP = frozenset({408, 429, 500, 502, 503, 504})
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
_NETWORK_ERRORS = (aiohttp.ClientError, httpx.TransportError, asyncio.TimeoutError)
_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

T = TypeVar("T")


class GeminiBackend:
    """`vertex=False`: the Gemini API, the key from the model's `api_key_env` (GEMINI_API_KEY).
    `vertex=True`: Vertex AI in the model's `cloud_region` (a location such as europe-west4), the
    project from GOOGLE_CLOUD_PROJECT, credentials from the environment as Google's libraries
    find them (GOOGLE_APPLICATION_CREDENTIALS, the metadata server)."""

    def __init__(
        self, adapter: str, models: Sequence[Model], timeout_s: float, max_retries: int, vertex: bool = False
    ) -> None:
        self.adapter = adapter
        self.family = "vertex" if vertex else "gemini"
        self.models = {m.id: m for m in models}
        self.max_retries = max_retries
        # the SDK retries nothing: the loop in _retrying does, honouring the provider's delay
        options = types.HttpOptions(timeout=int(timeout_s * 1000), retry_options=types.HttpRetryOptions(attempts=1))
        if vertex:
            self._client_of = _vertex_clients(adapter, models, options)
        else:
            self._client_of = clients_by_model(
                adapter,
                models,
                lambda endpoint, key: genai.Client(
                    api_key=key, http_options=options.model_copy(update={"base_url": endpoint})
                ),
            )

    def describe(self) -> adapter_pb2.AdapterDescription:
        return adapter_pb2.AdapterDescription(
            adapter=self.adapter,
            backend=self.family,
            models=list(self.models),
            logprobs=any(m.capabilities.logprobs for m in self.models.values()),
            streaming=True,
        )

    def _args(self, request: adapter_pb2.GenerateRequest) -> dict[str, Any]:
        model = self.models[request.model]
        p = request.params
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        config = types.GenerateContentConfig(
            max_output_tokens=p.max_tokens or DEFAULT_MAX_TOKENS,
            temperature=p.temperature,
            top_p=p.top_p or None,
            stop_sequences=list(p.stop) or None,
            seed=p.seed if p.HasField("seed") else None,
            response_mime_type="application/json" if p.response_format == "json_object" else None,
            system_instruction=system or None,
            response_logprobs=True if model.capabilities.logprobs else None,
        )
        contents = [
            types.Content(role="model" if m.role == "assistant" else "user", parts=[types.Part(text=m.content)])
            for m in request.messages
            if m.role != "system"
        ]
        return {"model": model.upstream_model or model.id, "contents": contents, "config": config}

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        model = self.models[request.model]
        client = self._client_of[model.id]
        args = self._args(request)
        started = time.perf_counter()
        reply = await self._retrying(model, lambda: client.aio.models.generate_content(**args))
        elapsed_ms = (time.perf_counter() - started) * 1000
        text, finish_reason, logprobs = _read_candidate(reply)
        return adapter_pb2.GenerateResponse(
            text=text,
            finish_reason=finish_reason or "stop",
            usage=_usage(reply.usage_metadata),
            confidence=signals_from_logprobs(logprobs),
            latency_ms=elapsed_ms,
            time_to_first_token_ms=elapsed_ms,
        )

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        model = self.models[request.model]
        client = self._client_of[model.id]
        args = self._args(request)
        started = time.perf_counter()
        pieces: list[str] = []
        logprobs: list[float] = []
        usage = common_pb2.Usage()
        finish_reason, first_token_ms = "stop", 0.0
        # retried only until the stream opens: a stream that breaks after its first chunk is a fault
        chunks = await self._retrying(model, lambda: client.aio.models.generate_content_stream(**args))
        try:
            async for chunk in chunks:
                text, finish, chunk_logprobs = _read_candidate(chunk)
                finish_reason = finish or finish_reason
                logprobs += chunk_logprobs
                if chunk.usage_metadata is not None:
                    usage = _usage(chunk.usage_metadata)
                if text:
                    first_token_ms = first_token_ms or (time.perf_counter() - started) * 1000
                    pieces.append(text)
                    yield adapter_pb2.GenerateChunk(text=text)
        except (genai_errors.APIError, *_NETWORK_ERRORS) as exc:
            raise _mapped(exc, model) from exc
        yield adapter_pb2.GenerateChunk(
            final=True,
            summary=adapter_pb2.GenerateResponse(
                text="".join(pieces),
                finish_reason=finish_reason,
                usage=usage,
                confidence=signals_from_logprobs(logprobs),
                latency_ms=(time.perf_counter() - started) * 1000,
                time_to_first_token_ms=first_token_ms,
            ),
        )

    async def _retrying(self, model: Model, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.max_retries + 1):
            try:
                return await call()
            except (genai_errors.APIError, *_NETWORK_ERRORS) as exc:
                retryable = not isinstance(exc, genai_errors.APIError) or exc.code in RETRYABLE_HTTP
                wait = _retry_delay(exc, attempt)
                if not retryable or attempt == self.max_retries or wait > MAX_RETRY_WAIT_S:
                    raise _mapped(exc, model) from exc
                await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt raises")

    async def close(self) -> None:
        for client in set(self._client_of.values()):
            await client.aio.aclose()
            client.close()


def _vertex_clients(adapter: str, models: Sequence[Model], options: types.HttpOptions) -> dict[str, genai.Client]:
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "")
    if not project:
        raise StartupError(f"GOOGLE_CLOUD_PROJECT: not set (the Vertex AI project of adapter {adapter})")
    made: dict[tuple[str, str], genai.Client] = {}
    by_model: dict[str, genai.Client] = {}
    for m in models:
        if not m.cloud_region:
            raise StartupError(f"catalog: model {m.id} has no cloud_region (the Vertex AI location to call)")
        endpoint = m.resolved_endpoint(os.environ) or f"https://{m.cloud_region}-aiplatform.googleapis.com"
        if (endpoint, m.cloud_region) not in made:
            made[(endpoint, m.cloud_region)] = genai.Client(
                vertexai=True,
                project=project,
                location=m.cloud_region,
                http_options=options.model_copy(update={"base_url": endpoint}),
            )
        by_model[m.id] = made[(endpoint, m.cloud_region)]
    return by_model


def _read_candidate(reply: types.GenerateContentResponse) -> tuple[str, str, list[float]]:
    """(text, finish reason or "", token logprobs) of the first candidate."""
    if not reply.candidates:
        return "", "", []
    candidate = reply.candidates[0]
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    finish = candidate.finish_reason.value if candidate.finish_reason else ""
    chosen = candidate.logprobs_result.chosen_candidates if candidate.logprobs_result else None
    logprobs = [c.log_probability for c in chosen or [] if c.log_probability is not None]
    return text, _FINISH.get(finish, finish.lower()), logprobs


def _usage(meta: types.GenerateContentResponseUsageMetadata | None) -> common_pb2.Usage:
    if meta is None:
        return common_pb2.Usage()
    # a thinking model's thoughts are billed as output tokens
    output = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return common_pb2.Usage(input_tokens=meta.prompt_token_count or 0, output_tokens=output)


def _retry_delay(exc: Exception, attempt: int) -> float:
    """What the provider asked for (RetryInfo.retryDelay such as "12s", else Retry-After), else
    exponential backoff with full jitter: 0.25 s, 0.5 s, 1 s, ... capped at 4 s."""
    if isinstance(exc, genai_errors.APIError):
        details = exc.details if isinstance(exc.details, dict) else {}
        error = details.get("error", details)
        for detail in error.get("details", []) if isinstance(error, dict) else []:
            delay = detail.get("retryDelay") if isinstance(detail, dict) else None
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    break
        headers = getattr(exc.response, "headers", None) or {}
        retry_after = headers.get("retry-after") or headers.get("Retry-After")
        if retry_after:
            try:
                return float(retry_after)
            except ValueError:
                pass  # an HTTP date: fall back on our own backoff
    return random.uniform(0, min(4.0, 0.25 * 2**attempt))


def _mapped(exc: Exception, model: Model) -> BackendError:
    if isinstance(exc, genai_errors.APIError):
        code = _HTTP_STATUS.get(exc.code, grpc.StatusCode.UNAVAILABLE)  # 5xx and the rest
        details = exc.details if isinstance(exc.details, dict) else {}
        error = details.get("error", details) if isinstance(details.get("error", details), dict) else {}
        kind = str(error.get("status") or "")
        reasons = {d.get("reason") for d in error.get("details", []) if isinstance(d, dict)}
        if "API_KEY_INVALID" in reasons:  # the Gemini API refuses a bad key with 400, not 401
            code, kind = grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID"
        fault = ProviderFault(exc.code, kind, exc.message or str(exc), str(exc))
        return map_error(fault, [(ProviderFault, code)], model.provider)
    if isinstance(exc, asyncio.TimeoutError):
        return map_error(exc, [(asyncio.TimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED)], model.provider)
    return map_error(exc, [(Exception, grpc.StatusCode.UNAVAILABLE)], model.provider)
