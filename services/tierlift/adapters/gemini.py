"""Google's Gemini models through the official `google-genai` SDK, on the Gemini API (an API key)
or on Vertex AI (a project, a location and Application Default Credentials: a service account,
workload identity). JSON and SSE streaming, usage (thinking tokens counted as output, as they
are billed), token logprobs where the model gives them (`response_logprobs`: asked only when
the catalog says the model has them).

Retries are ours (`_retry.py`), not the SDK's: its backoff ignores the `RetryInfo.retryDelay`
that a Gemini 429 carries. A 429 or 5xx, a timeout or a dropped connection is retried up to
`max_retries` times, waiting what the provider asked (RetryInfo, else Retry-After), else an
exponential backoff with jitter.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
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
    clients_by_model,
    clients_by_region,
    description,
    final_chunk,
    grpc_code_of_http,
    provider_error,
    signals_from_logprobs,
    text_of,
    text_only,
)
from tierlift.adapters._retry import RETRYABLE_HTTP, backoff, retrying, seconds
from tierlift.core import pricing
from tierlift.core.catalog import Model
from tierlift.core.entry import StartupError
from tierlift.core.tokens import estimate_tokens
from tierlift.v1 import adapter_pb2, common_pb2

DEFAULT_MAX_TOKENS = 512
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
_NETWORK_ERRORS = (aiohttp.ClientError, httpx.TransportError, asyncio.TimeoutError)

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
            project = os.environ.get("GOOGLE_CLOUD_PROJECT", "")
            if not project:
                raise StartupError(f"GOOGLE_CLOUD_PROJECT: not set (the Vertex AI project of adapter {adapter})")
            self._client_of = clients_by_region(
                adapter,
                models,
                lambda endpoint, location: genai.Client(
                    vertexai=True,
                    project=project,
                    location=location,
                    # no endpoint: the SDK calls the location's own, https://<location>-aiplatform.googleapis.com
                    http_options=options.model_copy(update={"base_url": endpoint or None}),
                ),
                "Vertex AI location",
            )
        else:
            self._client_of = clients_by_model(
                adapter,
                models,
                lambda endpoint, key: genai.Client(
                    api_key=key, http_options=options.model_copy(update={"base_url": endpoint})
                ),
            )

    def describe(self) -> adapter_pb2.AdapterDescription:
        return description(self.adapter, self.family, list(self.models.values()))

    def _args(self, request: adapter_pb2.GenerateRequest) -> dict[str, Any]:
        model = self.models[request.model]
        p = request.params
        text_only(request, "the Gemini adapter", tools=True)
        system = "\n\n".join(text_of(m) for m in request.messages if m.role == "system")
        config = types.GenerateContentConfig(
            max_output_tokens=p.max_tokens or DEFAULT_MAX_TOKENS,
            temperature=p.temperature,
            top_p=p.top_p or None,
            stop_sequences=list(p.stop) or None,
            seed=p.seed if p.HasField("seed") else None,
            response_mime_type="application/json" if p.response_format in ("json_object", "json_schema") else None,
            response_json_schema=json.loads(p.json_schema)["schema"] if p.json_schema else None,
            system_instruction=system or None,
            response_logprobs=True if model.capabilities.logprobs else None,
            **_tools(p),
        )
        return {"model": model.upstream_model or model.id, "contents": _contents(request.messages), "config": config}

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        model = self.models[request.model]
        client = self._client_of[model.id]
        args = self._args(request)
        started = time.perf_counter()
        reply = await self._retrying(model, lambda: client.aio.models.generate_content(**args))
        elapsed_ms = (time.perf_counter() - started) * 1000
        text, finish_reason, logprobs = _read_candidate(reply)
        calls = _calls(reply)
        return adapter_pb2.GenerateResponse(
            text=text,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else finish_reason or "stop",
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
        calls: list[common_pb2.ToolCall] = []
        finish_reason, first_token_ms = "stop", 0.0
        # retried until the first chunk arrives (the SDK sends the request then, not before); a
        # stream that breaks after it is a fault
        first, rest = await self._retrying(model, lambda: _open_stream(client, args))
        try:
            async for chunk in _chained(first, rest):
                text, finish, chunk_logprobs = _read_candidate(chunk)
                calls += _calls(chunk)  # Gemini sends each call whole, in one chunk
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
        final = final_chunk("".join(pieces), "tool_calls" if calls else finish_reason, usage, logprobs, started,
                            first_token_ms)  # fmt: skip
        final.summary.tool_calls.extend(calls)
        yield final

    async def embed(self, request: adapter_pb2.EmbeddingsRequest) -> adapter_pb2.EmbeddingsResponse:
        """embed_content: the Gemini API's batchEmbedContents, Vertex AI's predict (the SDK picks)."""
        model = self.models[request.model]
        client = self._client_of[model.id]
        config = types.EmbedContentConfig(output_dimensionality=request.dimensions or None)
        started = time.perf_counter()
        reply = await self._retrying(model, lambda: client.aio.models.embed_content(
            model=model.upstream_model or model.id, contents=list(request.inputs), config=config))  # fmt: skip
        rows = reply.embeddings or []
        if len(rows) != len(request.inputs):
            raise BackendError(grpc.StatusCode.UNAVAILABLE, f"{model.provider}: {len(rows)} vectors for "
                               f"{len(request.inputs)} inputs")  # fmt: skip
        counted = [int(r.statistics.token_count or 0) for r in rows if r.statistics is not None]
        tokens = sum(counted) if counted else sum(estimate_tokens(text) for text in request.inputs)
        return adapter_pb2.EmbeddingsResponse(
            vectors=[common_pb2.Vector(values=r.values or []) for r in rows],
            usage=common_pb2.Usage(input_tokens=tokens),  # the Gemini API reports none: counted here
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def _retrying(self, model: Model, call: Callable[[], Awaitable[T]]) -> T:
        errors = (genai_errors.APIError, *_NETWORK_ERRORS)
        return await retrying(call, self.max_retries, errors, _retry_in, lambda exc: _mapped(exc, model))

    async def close(self) -> None:
        for client in set(self._client_of.values()):
            await client.aio.aclose()
            client.close()


def _contents(messages: Sequence[common_pb2.Message]) -> list[types.Content]:
    """Messages as Gemini's contents: an assistant's tool calls as `functionCall` parts of a model
    turn, tool results as `functionResponse` parts (named after the call they answer)."""
    called = {c.id: c.name for m in messages for c in m.tool_calls}
    contents = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            response = types.FunctionResponse(id=m.tool_call_id, name=called.get(m.tool_call_id, m.tool_call_id),
                                              response={"result": text_of(m)})  # fmt: skip
            contents.append(types.Content(role="user", parts=[types.Part(function_response=response)]))
        elif m.tool_calls:
            parts = [types.Part(text=text_of(m))] if text_of(m) else []
            parts += [types.Part(function_call=types.FunctionCall(id=c.id, name=c.name, args=json.loads(c.arguments)))
                      for c in m.tool_calls]  # fmt: skip
            contents.append(types.Content(role="model", parts=parts))
        else:
            role = "model" if m.role == "assistant" else "user"
            contents.append(types.Content(role=role, parts=[types.Part(text=text_of(m))]))
    return contents


def _tools(p: common_pb2.GenerationParams) -> dict[str, Any]:
    """`tools` (function declarations with their JSON Schemas) and `tool_config` ({} without tools)."""
    if not p.tools:
        return {}
    declarations = [types.FunctionDeclaration(name=t.name, description=t.description or None,
                                              parameters_json_schema=json.loads(t.parameters) if t.parameters else None)
                    for t in p.tools]  # fmt: skip
    mode = {"": "AUTO", "auto": "AUTO", "required": "ANY", "none": "NONE"}.get(p.tool_choice, "ANY")
    named = [p.tool_choice] if p.tool_choice not in ("", "auto", "required", "none") else None
    calling = types.FunctionCallingConfig(mode=mode, allowed_function_names=named)  # type: ignore[arg-type]
    return {"tools": [types.Tool(function_declarations=declarations)],
            "tool_config": types.ToolConfig(function_calling_config=calling)}  # fmt: skip


def _calls(reply: types.GenerateContentResponse) -> list[common_pb2.ToolCall]:
    """The function calls of the first candidate (ids made when the API gives none)."""
    if not reply.candidates or not reply.candidates[0].content or not reply.candidates[0].content.parts:
        return []
    calls = [part.function_call for part in reply.candidates[0].content.parts if part.function_call]
    return [common_pb2.ToolCall(id=c.id or f"call_{uuid.uuid4().hex[:24]}", name=c.name or "",
                                arguments=json.dumps(c.args or {}, separators=(",", ":"))) for c in calls]  # fmt: skip


async def _open_stream(
    client: genai.Client, args: dict[str, Any]
) -> tuple[types.GenerateContentResponse | None, AsyncIterator[types.GenerateContentResponse]]:
    """The stream's first chunk (None when it is empty) and the rest."""
    chunks = aiter(await client.aio.models.generate_content_stream(**args))
    return await anext(chunks, None), chunks


async def _chained(
    first: types.GenerateContentResponse | None, rest: AsyncIterator[types.GenerateContentResponse]
) -> AsyncIterator[types.GenerateContentResponse]:
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk


def _error_of(exc: genai_errors.APIError) -> dict[str, Any]:
    """The google.rpc error object of an APIError: {"code", "status", "message", "details": [...]}."""
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error", body)
    return error if isinstance(error, dict) else {}


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
    """Gemini's usage in our convention. promptTokenCount already counts the cached content
    (cachedContentTokenCount, explicit or implicit caching) and the prompt's images and audio
    (promptTokensDetails by modality; the cached ones are cache reads, cacheTokensDetails);
    a tool-use prompt (toolUsePromptTokenCount) is billed as input too. candidatesTokenCount
    leaves a thinking model's thoughts out: they are billed as output, so ours counts them, as
    reasoning."""
    if meta is None:
        return common_pb2.Usage()
    thoughts = meta.thoughts_token_count or 0
    prompt, cached = _by_modality(meta.prompt_tokens_details), _by_modality(meta.cache_tokens_details)
    return pricing.normalised(
        common_pb2.Usage(
            input_tokens=(meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0),
            output_tokens=(meta.candidates_token_count or 0) + thoughts,
            cache_read_input_tokens=meta.cached_content_token_count or 0,
            image_input_tokens=max(0, prompt.get("IMAGE", 0) - cached.get("IMAGE", 0)),
            audio_input_tokens=max(0, prompt.get("AUDIO", 0) - cached.get("AUDIO", 0)),
            reasoning_output_tokens=thoughts,
        )
    )


def _by_modality(details: list[types.ModalityTokenCount] | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in details or []:
        modality = str(getattr(d.modality, "value", d.modality))
        counts[modality] = counts.get(modality, 0) + (d.token_count or 0)
    return counts


def _retry_in(exc: Exception, attempt: int) -> float | None:
    """None for an error not worth retrying; else what the provider asked for
    (RetryInfo.retryDelay such as "12s", else Retry-After in seconds), else our backoff."""
    if isinstance(exc, genai_errors.APIError):
        if exc.code not in RETRYABLE_HTTP:
            return None
        asked = [d.get("retryDelay") for d in _error_of(exc).get("details", []) if isinstance(d, dict)]
        headers = getattr(exc.response, "headers", None) or {}
        for given in [*(a.removesuffix("s") for a in asked if isinstance(a, str)), headers.get("retry-after")]:
            if (delay := seconds(given)) is not None:
                return delay
    return backoff(attempt)


def _mapped(exc: Exception, model: Model) -> BackendError:
    if isinstance(exc, genai_errors.APIError):
        code = grpc_code_of_http(exc.code)
        error = _error_of(exc)
        kind = str(error.get("status") or "")
        reasons = {d.get("reason") for d in error.get("details", []) if isinstance(d, dict)}
        if "API_KEY_INVALID" in reasons:  # the Gemini API refuses a bad key with 400, not 401
            code, kind = grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID"
        return provider_error(code, model.provider, exc, exc.code, kind, exc.message or "")
    if isinstance(exc, asyncio.TimeoutError):
        return provider_error(grpc.StatusCode.DEADLINE_EXCEEDED, model.provider, exc)
    return provider_error(grpc.StatusCode.UNAVAILABLE, model.provider, exc)  # connection errors
